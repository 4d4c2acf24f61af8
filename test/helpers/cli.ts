/**
 * The `baton` CLI as a user runs it: a real process, with an environment the test
 * gives (nothing inherited but PATH and HOME), in a directory of the test's choosing,
 * optionally on a pseudo-terminal (util-linux `script`), so what a person sees on a
 * terminal is tested too.
 */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './processes.ts';

export const BATON = path.join(ROOT, 'scripts/baton.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Run on a pseudo-terminal: stdout and stderr arrive together (in `stdout`). */
  tty?: boolean;
  timeoutMs?: number;
  input?: string;
  /** Another copy of the CLI to run (a production install, say); default this checkout's. */
  script?: string;
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

export function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Starts `baton ARGS…`; `done` resolves when it exits. */
export function startCli(args: string[], opts: CliOptions = {}) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', BATON_METRICS_PORT: '0', ...opts.env };
  const script = opts.script ?? BATON;
  const command = opts.tty
    ? spawn('script', ['-qfec', [process.execPath, script, ...args].map(quote).join(' '), '/dev/null'], { cwd: opts.cwd ?? ROOT, env: { ...env, TERM: 'xterm' } })
    : spawn(process.execPath, [script, ...args], { cwd: opts.cwd ?? ROOT, env });
  let stdout = '';
  let stderr = '';
  command.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  command.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (opts.input !== undefined) command.stdin.end(opts.input);
  else command.stdin.end();
  const timer = setTimeout(() => command.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const done = new Promise<CliResult>((resolve) =>
    command.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    pid: command.pid as number,
    done,
    output: () => stdout + stderr,
    signal: (s: NodeJS.Signals) => command.kill(s),
  };
}

export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

/** Terminal output without its control sequences (colour, cursor moves, line clears). */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
