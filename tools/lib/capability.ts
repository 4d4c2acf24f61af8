/**
 * Capability tokens: what one tool call may do at one tool server, for a short time.
 *
 * A token is a JWT (RFC 7519) signed with EdDSA over Ed25519 (via `jose`), so a tool
 * server in any language can verify it with a standard JWT library. The runtime alone
 * holds the private key; tool servers hold only the public key, so a compromised tool
 * server cannot mint tokens for any other, and leaking its configuration leaks nothing
 * that signs. Verification is local (no call back to the runtime). The header's `kid`
 * is the RFC 7638 thumbprint of the signing key; during a rotation a server accepts
 * every key it was given.
 *
 * Two kinds, told apart by `use`:
 * - `call`: one call. `tool` names the one tool, `args` is the digest of the exact
 *   arguments (tools/lib/digest.ts); the server recomputes it from what it received.
 * - `list`: discovery. `tools` names the tools that may be listed; it calls nothing.
 * Both carry `aud` (the server), `sub` (`run_id:seq`, the call's idempotency key),
 * `iat`, `exp`, `jti`, `iss` = "baton", and `run`, `seq`, `fn`, `tenant`.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, compactVerify, decodeProtectedHeader, exportJWK } from 'jose';

export const ISSUER = 'baton';
/** Default for BATON_TOOL_MAX_TOKEN_S: a server refuses tokens that live longer. */
export const DEFAULT_MAX_TOKEN_S = 900;
/** How far in the future a token's `iat` may be (clocks of two machines disagree a little). */
export const CLOCK_SKEW_S = 10;

interface BaseClaims {
  /** Audience: the tool server's name (e.g. "git"). */
  aud: string;
  /** `${run}:${seq}`: the step's idempotency key. */
  sub: string;
  iss: string;
  run: string;
  seq: number;
  fn: string;
  /** The tenant that owns the run; the server's policy says what it may touch. */
  tenant: string;
  /** Issued at / expires at, epoch seconds. */
  iat: number;
  exp: number;
  jti: string;
}

export interface CallClaims extends BaseClaims {
  use: 'call';
  /** The one tool this token may call. */
  tool: string;
  /** Digest of the call's exact arguments (`sha256:<hex>`). */
  args: string;
}

export interface ListClaims extends BaseClaims {
  use: 'list';
  /** Tools of this server that may be listed (tools/list only; no call rights). */
  tools: string[];
}

export type CapabilityClaims = CallClaims | ListClaims;

type Minted<T> = T extends CapabilityClaims ? Omit<T, 'iat' | 'jti' | 'iss' | 'sub'> & { iat?: number } : never;
export type MintClaims = Minted<CapabilityClaims>;

const thumbprints = new WeakMap<KeyObject, Promise<string>>();

/** The RFC 7638 thumbprint of a key's public half: the `kid` of the tokens it signs. */
export function keyId(key: KeyObject): Promise<string> {
  let kid = thumbprints.get(key);
  if (!kid) {
    const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
    kid = exportJWK(pub).then((jwk) => calculateJwkThumbprint(jwk));
    thumbprints.set(key, kid);
  }
  return kid;
}

export async function mintCapability(privateKey: KeyObject, claims: MintClaims): Promise<string> {
  const { iat, ...rest } = claims;
  const payload = { ...rest, iss: ISSUER, sub: `${claims.run}:${claims.seq}`, iat: iat ?? Math.floor(Date.now() / 1000), jti: crypto.randomUUID() };
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: await keyId(privateKey) }).sign(privateKey);
}

export type VerifyResult =
  | { ok: true; claims: CapabilityClaims }
  | { ok: false; status: 401 | 403; reason: string };

export interface VerifyOptions {
  nowMs?: number;
  /** Longest lifetime (`exp − iat`) accepted; BATON_TOOL_MAX_TOKEN_S. */
  maxLifetimeS?: number;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]{1,4096}\.[A-Za-z0-9_-]{1,16384}\.[A-Za-z0-9_-]{1,512}$/;

/**
 * Checks the signature, the claims' shape, the times (not expired, not issued in the
 * future, not longer-lived than the rule) and the audience. The caller then checks
 * the call itself (tool, argument digest, idempotency key) against the request.
 */
export async function verifyCapability(
  publicKey: KeyObject | readonly KeyObject[],
  token: string,
  audience: string,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  if (!JWT_SHAPE.test(token)) return { ok: false, status: 401, reason: 'malformed token' };
  let kid: unknown;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== 'EdDSA') return { ok: false, status: 401, reason: 'malformed token' };
    kid = header.kid;
  } catch {
    return { ok: false, status: 401, reason: 'malformed token' };
  }
  const keys = Array.isArray(publicKey) ? publicKey : [publicKey as KeyObject];
  // The key the header names first, then the others (a token minted without a kid).
  const named = await Promise.all(keys.map(async (k) => typeof kid === 'string' && (await keyId(k)) === kid));
  const ordered = [...keys.filter((_, i) => named[i]), ...keys.filter((_, i) => !named[i])];
  let payload: Uint8Array | null = null;
  for (const key of ordered) {
    try {
      payload = (await compactVerify(token, key, { algorithms: ['EdDSA'] })).payload;
      break;
    } catch {
      // not this key
    }
  }
  if (!payload) return { ok: false, status: 401, reason: 'bad signature' };
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return { ok: false, status: 401, reason: 'malformed claims' };
  }
  // A valid signature over odd claims can only come from a buggy minter; refuse it all the same.
  if (!isClaims(claims)) return { ok: false, status: 401, reason: 'malformed claims' };
  const now = (opts.nowMs ?? Date.now()) / 1000;
  const max = opts.maxLifetimeS ?? DEFAULT_MAX_TOKEN_S;
  if (claims.iat > now + CLOCK_SKEW_S) return { ok: false, status: 401, reason: 'token issued in the future' };
  if (claims.exp - claims.iat > max) {
    return { ok: false, status: 401, reason: `token lifetime ${claims.exp - claims.iat} s exceeds the maximum of ${max} s (BATON_TOOL_MAX_TOKEN_S)` };
  }
  if (claims.exp <= now) return { ok: false, status: 401, reason: 'token expired' };
  if (claims.aud !== audience) return { ok: false, status: 403, reason: `token is for "${claims.aud}", not "${audience}"` };
  return { ok: true, claims };
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function isClaims(c: unknown): c is CapabilityClaims {
  const x = c as Record<string, unknown> | null;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const base =
    typeof x.aud === 'string' &&
    x.iss === ISSUER &&
    typeof x.run === 'string' &&
    typeof x.fn === 'string' &&
    typeof x.tenant === 'string' &&
    typeof x.jti === 'string' &&
    Number.isInteger(x.seq) &&
    x.sub === `${String(x.run)}:${String(x.seq)}` &&
    Number.isFinite(x.iat) &&
    Number.isFinite(x.exp);
  if (!base) return false;
  if (x.use === 'call') return typeof x.tool === 'string' && typeof x.args === 'string' && DIGEST.test(x.args);
  if (x.use === 'list') return Array.isArray(x.tools) && x.tools.every((t) => typeof t === 'string');
  return false;
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
