/**
 * Capability tokens: what a step may do at one tool server, for a short time.
 *
 * Signed with Ed25519 rather than a shared HMAC secret: the runtime alone holds the
 * private key and tool servers hold only the public key, so a compromised tool
 * server cannot mint tokens for any other server, and leaking a tool server's
 * configuration leaks nothing that signs. Verification is a local signature check
 * (no call back to the runtime), so a tool server keeps working while the API is down.
 *
 * Format: `bct1.<base64url(JSON claims)>.<base64url(signature)>`.
 */
import crypto, { type KeyObject } from 'node:crypto';

export interface CapabilityClaims {
  /** Audience: the tool server's name (e.g. "git"). */
  aud: string;
  /** The run and step this token was minted for; their idempotency key is `${run}:${seq}`. */
  run: string;
  seq: number;
  fn: string;
  /** Tools of this server the function declared; nothing else is callable. */
  tools: string[];
  /** Issued at / expires at, epoch seconds. */
  iat: number;
  exp: number;
  jti: string;
}

const PREFIX = 'bct1';

const b64 = (buf: Buffer) => buf.toString('base64url');

export function mintCapability(privateKey: KeyObject, claims: Omit<CapabilityClaims, 'iat' | 'jti'>): string {
  const full: CapabilityClaims = { ...claims, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID() };
  const body = `${PREFIX}.${b64(Buffer.from(JSON.stringify(full)))}`;
  return `${body}.${b64(crypto.sign(null, Buffer.from(body), privateKey))}`;
}

export type VerifyResult =
  | { ok: true; claims: CapabilityClaims }
  | { ok: false; status: 401 | 403; reason: string };

/**
 * Checks signature, expiry and audience. The caller then checks the tool name
 * (`claims.tools`) and the idempotency key against the request. Several public keys
 * are accepted while the signing key is rotated.
 */
export function verifyCapability(
  publicKey: KeyObject | readonly KeyObject[],
  token: string,
  audience: string,
  nowMs = Date.now(),
): VerifyResult {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, status: 401, reason: 'malformed token' };
  const body = `${parts[0]}.${parts[1]}`;
  const signature = Buffer.from(parts[2], 'base64url');
  const valid = (Array.isArray(publicKey) ? publicKey : [publicKey]).some((key: KeyObject) => {
    try {
      return crypto.verify(null, Buffer.from(body), key, signature);
    } catch {
      return false;
    }
  });
  if (!valid) return { ok: false, status: 401, reason: 'bad signature' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return { ok: false, status: 401, reason: 'malformed claims' };
  }
  // A valid signature over odd claims can only come from a buggy minter; refuse it all the same.
  if (!isClaims(claims)) return { ok: false, status: 401, reason: 'malformed claims' };
  if (claims.exp * 1000 <= nowMs) return { ok: false, status: 401, reason: 'token expired' };
  if (claims.aud !== audience) return { ok: false, status: 403, reason: `token is for "${claims.aud}", not "${audience}"` };
  return { ok: true, claims };
}

function isClaims(c: unknown): c is CapabilityClaims {
  const x = c as Partial<CapabilityClaims> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.aud === 'string' &&
    typeof x.run === 'string' &&
    typeof x.fn === 'string' &&
    typeof x.jti === 'string' &&
    Number.isInteger(x.seq) &&
    Number.isFinite(x.iat) &&
    Number.isFinite(x.exp) &&
    Array.isArray(x.tools) &&
    x.tools.every((t) => typeof t === 'string')
  );
}

/** Accepts a PEM key or the base64 of one (handy in environment variables). */
function pem(text: string): string {
  const t = text.trim();
  return t.startsWith('-----BEGIN') ? t : Buffer.from(t, 'base64').toString('utf8');
}

export function loadPrivateKey(text: string): KeyObject {
  return crypto.createPrivateKey(pem(text));
}

export function loadPublicKey(text: string): KeyObject {
  return crypto.createPublicKey(pem(text));
}

/** One or more public keys: concatenated PEM blocks, or base64 PEMs separated by commas. */
export function loadPublicKeys(text: string): KeyObject[] {
  const blocks = text.includes('-----BEGIN') ? (text.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g) ?? []) : text.split(',');
  const keys = blocks.map((b) => b.trim()).filter(Boolean).map(loadPublicKey);
  if (keys.length === 0) throw new Error('no public key found');
  return keys;
}

export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
