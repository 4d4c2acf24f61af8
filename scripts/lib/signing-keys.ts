/**
 * The Ed25519 pair that signs tool capability tokens, for processes on one machine:
 * kept in the data directory as `tool-signing-key.pem` (private, mode 0600: workers
 * and `baton dev` sign with it) and `tool-public-key.pem` (tool servers verify with
 * it). `baton keys signing` makes the pair; BATON_TOOL_SIGNING_KEY and
 * BATON_TOOL_PUBLIC_KEY, when set, win over the files. In Kubernetes `baton deploy`
 * makes the pair as two Secrets instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateKeyPair, loadPublicKey } from '../../tools/lib/capability.ts';

export const PRIVATE_FILE = 'tool-signing-key.pem';
export const PUBLIC_FILE = 'tool-public-key.pem';

export interface SigningKeys {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function signingKeyFiles(dir: string) {
  return { privateFile: path.join(dir, PRIVATE_FILE), publicFile: path.join(dir, PUBLIC_FILE) };
}

/** The pair in `dir`, or null when `baton keys signing` has not made one there. */
export function readSigningKeys(dir: string): SigningKeys | null {
  const { privateFile, publicFile } = signingKeyFiles(dir);
  try {
    return { privateKeyPem: fs.readFileSync(privateFile, 'utf8'), publicKeyPem: fs.readFileSync(publicFile, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Makes a new pair in `dir`; refuses to replace one unless `replace` (tokens signed with the old key stop verifying). */
export function createSigningKeys(dir: string, replace = false): SigningKeys {
  const { privateFile, publicFile } = signingKeyFiles(dir);
  if (!replace && fs.existsSync(privateFile)) throw new Error(`${privateFile} exists; --replace makes a new pair`);
  fs.mkdirSync(dir, { recursive: true });
  const pair = generateKeyPair();
  fs.writeFileSync(privateFile, pair.privateKeyPem, { mode: 0o600 });
  fs.chmodSync(privateFile, 0o600);
  fs.writeFileSync(publicFile, pair.publicKeyPem, { mode: 0o644 });
  return pair;
}

/** The embedded mode's pair: BATON_TOOL_SIGNING_KEY if set, else the data directory's (made on first use). */
export function embeddedSigningKeys(dir: string, fromEnv: string | undefined): SigningKeys {
  if (fromEnv) return { privateKeyPem: fromEnv, publicKeyPem: loadPublicKey(fromEnv).export({ type: 'spki', format: 'pem' }).toString() };
  return readSigningKeys(dir) ?? createSigningKeys(dir);
}
