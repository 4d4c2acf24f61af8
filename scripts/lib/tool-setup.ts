/**
 * What a step-running process (worker, function pod) needs to call tools, and the
 * loud warning when it lacks it: a URL for every tool server its functions declared,
 * and the key that signs capability tokens.
 *
 * On one machine both may come from the data directory: URLs from a running
 * `baton tools` (tools.json, read when a call is made, so a worker started before the
 * tools, or tools restarted on new ports, are found) and the key pair made by
 * `baton keys signing`. BATON_TOOL_<NAME>_URL and BATON_TOOL_SIGNING_KEY win.
 */
import type { Config } from '../../runtime/config.ts';
import type { FunctionRegistry } from '../../runtime/functions.ts';
import { readToolsRecord } from './local-processes.ts';
import { readSigningKeys, signingKeyFiles } from './signing-keys.ts';

/**
 * Tool URLs as the gateway reads them: the environment's, else those of the
 * `baton tools` running on this data directory, looked up at each call.
 */
export function liveToolUrls(config: Config): Readonly<Record<string, string>> {
  const current = (): Record<string, string> => ({ ...readToolsRecord(config.dataDir)?.urls, ...config.toolUrls });
  const lookup = (name: string | symbol) => {
    const urls = current();
    return typeof name === 'string' && Object.hasOwn(urls, name) ? urls[name] : undefined;
  };
  // A Proxy keeps the gateway's plain-record contract (indexing, `in`, Object.hasOwn,
  // Object.keys) while every lookup reads the current tools.json.
  return new Proxy({} as Record<string, string>, {
    get: (_, name) => lookup(name),
    has: (_, name) => lookup(name) !== undefined,
    ownKeys: () => Object.keys(current()),
    getOwnPropertyDescriptor: (_, name) => {
      const value = lookup(name);
      return value === undefined ? undefined : { value, enumerable: true, configurable: true, writable: false };
    },
  });
}

/** The signing key: BATON_TOOL_SIGNING_KEY, else the data directory's pair (`baton keys signing`). */
export function signingKeyFor(config: Config): { pem: string; from: string } | null {
  if (config.toolSigningKey) return { pem: config.toolSigningKey, from: 'BATON_TOOL_SIGNING_KEY' };
  const pair = readSigningKeys(config.dataDir);
  return pair ? { pem: pair.privateKeyPem, from: signingKeyFiles(config.dataDir).privateFile } : null;
}

const envName = (server: string) => `BATON_TOOL_${server.toUpperCase().replaceAll('-', '_')}_URL`;

/** Warnings for functions whose tool calls cannot work as configured (empty: all is well). */
export function toolProblems(functions: FunctionRegistry, urls: Readonly<Record<string, string>>, hasSigningKey: boolean): string[] {
  const problems: string[] = [];
  const needsToken: string[] = [];
  for (const agent of functions.values()) {
    const servers = Object.keys(agent.tools);
    if (servers.length) needsToken.push(agent.name);
    const missing = servers.filter((s) => !urls[s]);
    if (missing.length) {
      problems.push(
        `function ${agent.name} calls tool servers with no URL: ${missing.map((s) => `${s} (set ${envName(s)})`).join(', ')}; ` +
          `its tool steps will fail with tool_denied. \`baton tools\` serves the demo's git and review servers on this machine.`,
      );
    }
  }
  if (needsToken.length && !hasSigningKey) {
    problems.push(
      `no key to sign tool capability tokens (BATON_TOOL_SIGNING_KEY): tool calls of ${needsToken.join(', ')} will be refused. ` +
        '`baton keys signing` makes a pair in the data directory.',
    );
  }
  return problems;
}

/** Prints problems so nobody misses them: a banner on stderr, not a log line among many. */
export function warnLoudly(who: string, problems: readonly string[]): void {
  for (const p of problems) process.stderr.write(`\n${who}: WARNING: ${p}\n`);
  if (problems.length) process.stderr.write('\n');
}
