import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { SignJWT, jwtVerify } from 'jose';
import { type MintClaims, generateKeyPair, keyId, loadPrivateKey, loadPublicKey, loadPublicKeys, mintCapability, verifyCapability } from './capability.ts';
import { digestArgs } from './digest.ts';

const pair = generateKeyPair();
const privateKey = loadPrivateKey(pair.privateKeyPem);
const publicKey = loadPublicKey(pair.publicKeyPem);
const nowS = () => Math.floor(Date.now() / 1000);
const RUN = '0190f5d2-0000-7000-8000-000000000001';
const claims = (over: Partial<MintClaims> = {}): MintClaims =>
  ({ use: 'call', aud: 'review', run: RUN, seq: 2, fn: 'pr-review', tenant: 'acme', tool: 'post_comment', args: digestArgs({ repo: 'acme/shop', pr: 1 }), exp: nowS() + 60, ...over }) as MintClaims;

/** Re-encodes the claims of a token, keeping its signature (what an attacker can do without the key). */
function tamper(token: string, change: (c: Record<string, unknown>) => void): string {
  const [header, body, sig] = token.split('.');
  const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(c);
  return `${header}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${sig}`;
}

test('a minted token is a standard EdDSA JWT: any JWT library verifies it with the public key', async () => {
  const token = await mintCapability(privateKey, claims());
  const { payload, protectedHeader } = await jwtVerify(token, publicKey, { audience: 'review', issuer: 'baton', algorithms: ['EdDSA'] });
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(protectedHeader.kid, await keyId(publicKey));
  assert.equal(payload.sub, `${RUN}:2`);
  assert.equal(payload.tool, 'post_comment');
  assert.equal(payload.tenant, 'acme');
  assert.match(String(payload.args), /^sha256:[0-9a-f]{64}$/);
  const v = await verifyCapability(publicKey, token, 'review');
  assert.ok(v.ok);
  assert.equal(v.claims.use, 'call');
  assert.match(v.claims.jti, /^[0-9a-f-]{36}$/);
  assert.ok(Math.abs(v.claims.iat - Date.now() / 1000) < 5);
});

test('an expired token is refused (401), however valid its signature', async () => {
  const token = await mintCapability(privateKey, claims());
  const v = await verifyCapability(publicKey, token, 'review');
  assert.ok(v.ok);
  assert.deepEqual(await verifyCapability(publicKey, token, 'review', { nowMs: v.claims.exp * 1000 }), { ok: false, status: 401, reason: 'token expired' });
  const past = await mintCapability(privateKey, claims({ iat: nowS() - 10, exp: nowS() - 1 }));
  assert.equal((await verifyCapability(publicKey, past, 'review')).ok, false);
});

test('a token that lives longer than BATON_TOOL_MAX_TOKEN_S, or is issued in the future, is refused (401)', async () => {
  const long = await mintCapability(privateKey, claims({ exp: nowS() + 901 }));
  const refused = await verifyCapability(publicKey, long, 'review');
  assert.deepEqual(refused, { ok: false, status: 401, reason: 'token lifetime 901 s exceeds the maximum of 900 s (BATON_TOOL_MAX_TOKEN_S)' });
  assert.ok((await verifyCapability(publicKey, await mintCapability(privateKey, claims({ exp: nowS() + 900 })), 'review')).ok, 'exactly the maximum is fine');
  assert.equal((await verifyCapability(publicKey, long, 'review', { maxLifetimeS: 60 })).ok, false);
  const shorter = await mintCapability(privateKey, claims({ exp: nowS() + 61 }));
  assert.equal((await verifyCapability(publicKey, shorter, 'review', { maxLifetimeS: 60 })).ok, false, 'the rule is configurable');
  const future = await mintCapability(privateKey, claims({ iat: nowS() + 120, exp: nowS() + 180 }));
  assert.deepEqual(await verifyCapability(publicKey, future, 'review'), { ok: false, status: 401, reason: 'token issued in the future' });
  const skewed = await mintCapability(privateKey, claims({ iat: nowS() + 2, exp: nowS() + 60 }));
  assert.ok((await verifyCapability(publicKey, skewed, 'review')).ok, 'a small clock skew is tolerated');
});

test('a tampered payload is refused (401): another tool, other arguments, another run, a later expiry, another audience', async () => {
  const token = await mintCapability(privateKey, claims());
  for (const change of [
    (c: Record<string, unknown>) => (c.tool = 'delete_all'),
    (c: Record<string, unknown>) => (c.args = digestArgs({ repo: 'victim/secrets', pr: 1 })),
    (c: Record<string, unknown>) => (c.run = '0190f5d2-0000-7000-8000-000000000002'),
    (c: Record<string, unknown>) => (c.tenant = 'victim'),
    (c: Record<string, unknown>) => (c.exp = Number(c.exp) + 3600),
    (c: Record<string, unknown>) => (c.aud = 'git'),
  ]) {
    assert.deepEqual(await verifyCapability(publicKey, tamper(token, change), 'review'), { ok: false, status: 401, reason: 'bad signature' });
  }
});

test('a token signed by another key, with a damaged signature, or with another algorithm is refused (401)', async () => {
  const other = loadPrivateKey(generateKeyPair().privateKeyPem);
  assert.equal((await verifyCapability(publicKey, await mintCapability(other, claims()), 'review')).ok, false);
  const token = await mintCapability(privateKey, claims());
  const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
  assert.deepEqual(await verifyCapability(publicKey, flipped, 'review'), { ok: false, status: 401, reason: 'bad signature' });
  const hmac = await new SignJWT({ ...claims() }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('a shared secret of 32 bytes or more!'));
  assert.deepEqual(await verifyCapability(publicKey, hmac, 'review'), { ok: false, status: 401, reason: 'malformed token' });
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${token.split('.')[1]}.`;
  assert.equal((await verifyCapability(publicKey, none, 'review')).ok, false);
});

test('a token for another tool server is refused (403)', async () => {
  const token = await mintCapability(privateKey, claims());
  assert.deepEqual(await verifyCapability(publicKey, token, 'git'), { ok: false, status: 403, reason: 'token is for "review", not "git"' });
});

test('malformed tokens are refused (401) without throwing', async () => {
  for (const bad of ['', 'bct1', 'a.b', 'a.b.c.d', 'Bearer x', '..', '%%%.%%%.%%%', `e30.e30.${'A'.repeat(5000)}`, 'e30.e30.AA']) {
    const v = await verifyCapability(publicKey, bad, 'review');
    assert.equal(v.ok, false, bad);
    assert.equal(v.ok === false && v.status, 401, bad);
  }
});

test('claims of the wrong shape are refused even under a valid signature', async () => {
  const sign = (payload: Record<string, unknown>) => new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA' }).sign(privateKey);
  const good = { ...claims(), iss: 'baton', sub: `${RUN}:2`, iat: nowS(), jti: 'j' };
  for (const bad of [
    { ...good, tool: ['post_comment'] },
    { ...good, seq: '2' },
    { ...good, exp: 'never' },
    { ...good, args: 'anything' },
    { ...good, tenant: undefined },
    { ...good, sub: `${RUN}:3` },
    { ...good, iss: 'someone' },
    { ...good, use: 'admin' },
    { ...good, use: 'list' },
  ]) {
    assert.deepEqual(await verifyCapability(publicKey, await sign(bad), 'review'), { ok: false, status: 401, reason: 'malformed claims' }, JSON.stringify(bad));
  }
  assert.equal((await verifyCapability(publicKey, await sign(good), 'review')).ok, true);
});

test('a listing token names the tools it may list and nothing to call', async () => {
  const token = await mintCapability(privateKey, { use: 'list', aud: 'review', run: RUN, seq: 1, fn: 'pr-agent', tenant: 'acme', tools: ['post_comment'], exp: nowS() + 60 });
  const v = await verifyCapability(publicKey, token, 'review');
  assert.ok(v.ok && v.claims.use === 'list');
  assert.deepEqual(v.claims.use === 'list' && v.claims.tools, ['post_comment']);
  assert.equal((v.claims as unknown as Record<string, unknown>).tool, undefined);
});

test('a tool server holds only the public key, which cannot sign', async () => {
  assert.throws(() => crypto.sign(null, Buffer.from('x'), publicKey));
  await assert.rejects(mintCapability(publicKey, claims()));
  // Keys are accepted as PEM or as base64 of the PEM (environment variables).
  const fromBase64 = loadPrivateKey(Buffer.from(pair.privateKeyPem).toString('base64'));
  assert.ok((await verifyCapability(publicKey, await mintCapability(fromBase64, claims()), 'review')).ok);
});

test('during a rotation a server accepts tokens of the old and the new key, and no other', async () => {
  const next = generateKeyPair();
  const both = [
    loadPublicKeys(`${pair.publicKeyPem}\n${next.publicKeyPem}`),
    loadPublicKeys([pair.publicKeyPem, next.publicKeyPem].map((k) => Buffer.from(k).toString('base64')).join(',')),
  ];
  for (const keys of both) {
    assert.equal(keys.length, 2);
    assert.ok((await verifyCapability(keys, await mintCapability(privateKey, claims()), 'review')).ok);
    assert.ok((await verifyCapability(keys, await mintCapability(loadPrivateKey(next.privateKeyPem), claims()), 'review')).ok);
    assert.equal((await verifyCapability(keys, await mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), claims()), 'review')).ok, false);
  }
  assert.throws(() => loadPublicKeys(' '), /no public key/);
});
