/** What a process uses, read from /proc (Linux): memory of its process tree, its PostgreSQL connections. */
import fs from 'node:fs';

function children(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Resident memory of `pid` and all its descendants, in MB (0 once it has exited). */
export function rssOfTreeMb(pid: number): number {
  let kb = 0;
  const queue = [pid];
  while (queue.length) {
    const p = queue.pop() as number;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      continue;
    }
    queue.push(...children(p));
  }
  return kb / 1024;
}

/** TCP connections the process holds open to `port` on the local machine (e.g. 5432: its PostgreSQL connections). */
export function connectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed while we looked
      }
    }
  } catch {
    return 0;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl local rem st … inode (index 9); state 01 = ESTABLISHED
      if (cols.length > 9 && cols[2].endsWith(`:${hexPort}`) && cols[3] === '01' && inodes.has(cols[9])) count++;
    }
  }
  return count;
}
