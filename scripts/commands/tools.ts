/**
 * `baton tools`: the demo's tool servers (git and review), for workers on this machine
 * (README "Separate processes on real services"). Each is an MCP server on loopback
 * that verifies capability tokens with the public key of the pair `baton keys
 * signing` made (or BATON_TOOL_PUBLIC_KEY). Their URLs go into the data directory,
 * where workers look them up; in Kubernetes the tool servers are Deployments instead.
 */
import path from 'node:path';
import { loadConfig } from '../../runtime/config.ts';
import { CliError, EXIT, intOption, parseCommand } from '../lib/cli.ts';
import { startLocalTools } from '../lib/embedded.ts';
import { writeRecord } from '../lib/local-processes.ts';
import { untilSignal } from '../lib/serve.ts';
import { readSigningKeys, signingKeyFiles } from '../lib/signing-keys.ts';

export const usage = 'usage: baton tools [--port PORT]';

export const help = `${usage}

Serves the demo's tool servers on 127.0.0.1 until stopped (Ctrl-C, SIGTERM):
  git     get_diff, list_changed_files of GIT_REPO (default: the repository of the
          current directory, else a small demo repository in the data directory)
  review  post_comment, list_comments (comments in <data dir>/review-comments.jsonl)

They verify capability tokens with BATON_TOOL_PUBLIC_KEY, or the public key of the
pair \`baton keys signing\` made in the data directory. Their URLs are written to
<data dir>/tools.json, where \`baton worker\` on this machine finds them (or set
BATON_TOOL_GIT_URL and BATON_TOOL_REVIEW_URL to the printed URLs).

  --port PORT   git on PORT, review on PORT+1 (default: free ports)

Environment: BATON_DATA_DIR (.baton), BATON_TOOL_PUBLIC_KEY, GIT_REPO.`;

export async function main(argv: string[]): Promise<number> {
  const stopSignal = untilSignal();
  const { values } = parseCommand(argv, { port: { type: 'string' } }, usage, { max: 0 });
  const port = intOption(values.port, '--port', usage);
  const config = loadConfig();
  const publicKeyPem = process.env.BATON_TOOL_PUBLIC_KEY ?? readSigningKeys(config.dataDir)?.publicKeyPem;
  if (!publicKeyPem) {
    throw new CliError(
      `no public key to verify capability tokens: run \`baton keys signing\` first (it writes ${path.relative('.', signingKeyFiles(config.dataDir).publicFile)}), or set BATON_TOOL_PUBLIC_KEY`,
      EXIT.usage,
    );
  }
  const tools = await startLocalTools(config.dataDir, publicKeyPem, port === undefined ? {} : { ports: [port, port + 1] });
  const forget = writeRecord(config.dataDir, 'tools.json', { pid: process.pid, urls: tools.urls });
  try {
    console.error(`baton tools: git ${tools.urls.git} (repository ${tools.repo})`);
    console.error(`baton tools: review ${tools.urls.review}`);
    console.error(`baton tools: workers on this machine find them in ${path.join(config.dataDir, 'tools.json')}`);
    const signal = await stopSignal;
    console.error(`baton tools: ${signal}: stopping`);
  } finally {
    forget();
    await tools.close();
  }
  return 0;
}
