import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair, loadPrivateKey, loadPublicKey, loadPublicKeys, mintCapability, verifyCapability } from './capability.ts';

const pair = generateKeyPair();
const privateKey = loadPrivateKey(pair.privateKeyPem);
const publicKey = loadPublicKey(pair.publicKeyPem);
const inOneMinute = () => Math.floor(Date.now() / 1000) + 60;
const claims = () => ({ aud: 'review', run: '0190f5d2-0000-7000-8000-000000000001', seq: 2, fn: 'pr-review', tools: ['post_comment'], exp: inOneMinute() });

/** Re-encodes the claims of a token, keeping its signature (what an attacker can do without the key). */
function tamper(token: string, change: (c: Record<string, unknown>) => void): string {
  const [prefix, body, sig] = token.split('.');
  const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
  change(c);
  return `${prefix}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${sig}`;
}

test('a minted token verifies, with its claims, a jti and an issue time', () => {
  const token = mintCapability(privateKey, claims());
  assert.match(token, /^bct1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const v = verifyCapability(publicKey, token, 'review');
  assert.ok(v.ok);
  assert.equal(v.claims.run, claims().run);
  assert.deepEqual(v.claims.tools, ['post_comment']);
  assert.match(v.claims.jti, /^[0-9a-f-]{36}$/);
  assert.ok(Math.abs(v.claims.iat - Date.now() / 1000) < 5);
});

test('an expired token is refused (401), however valid its signature', () => {
  const token = mintCapability(privateKey, claims());
  const exp = verifyCapability(publicKey, token, 'review');
  assert.ok(exp.ok);
  const later = verifyCapability(publicKey, token, 'review', exp.claims.exp * 1000);
  assert.deepEqual(later, { ok: false, status: 401, reason: 'token expired' });
  const past = mintCapability(privateKey, { ...claims(), exp: Math.floor(Date.now() / 1000) - 1 });
  assert.equal(verifyCapability(publicKey, past, 'review').ok, false);
});

test('a tampered payload is refused (401): widening the scope, switching the run, extending the expiry', () => {
  const token = mintCapability(privateKey, claims());
  for (const change of [
    (c: Record<string, unknown>) => (c.tools = ['post_comment', 'delete_all']),
    (c: Record<string, unknown>) => (c.run = '0190f5d2-0000-7000-8000-000000000002'),
    (c: Record<string, unknown>) => (c.exp = Number(c.exp) + 3600),
    (c: Record<string, unknown>) => (c.aud = 'git'),
  ]) {
    assert.deepEqual(verifyCapability(publicKey, tamper(token, change), 'review'), { ok: false, status: 401, reason: 'bad signature' });
  }
});

test('a token signed by another key, or with a damaged signature, is refused (401)', () => {
  const other = loadPrivateKey(generateKeyPair().privateKeyPem);
  assert.equal(verifyCapability(publicKey, mintCapability(other, claims()), 'review').ok, false);
  const token = mintCapability(privateKey, claims());
  const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
  assert.deepEqual(verifyCapability(publicKey, flipped, 'review'), { ok: false, status: 401, reason: 'bad signature' });
});

test('a token for another tool server is refused (403)', () => {
  const token = mintCapability(privateKey, claims());
  const v = verifyCapability(publicKey, token, 'git');
  assert.deepEqual(v, { ok: false, status: 403, reason: 'token is for "review", not "git"' });
});

test('malformed tokens are refused (401) without throwing', () => {
  for (const bad of ['', 'bct1', 'bct1.x', 'bct1.x.y.z', 'bct2.e30.AA', 'Bearer x', 'bct1..', 'bct1.%%%.%%%', 'bct1.e30.' + 'A'.repeat(5000)]) {
    const v = verifyCapability(publicKey, bad, 'review');
    assert.equal(v.ok, false, bad);
    assert.equal(v.ok === false && v.status, 401, bad);
  }
});

test('claims of the wrong shape are refused even under a valid signature', () => {
  const sign = (json: string) => {
    const body = `bct1.${Buffer.from(json).toString('base64url')}`;
    return `${body}.${crypto.sign(null, Buffer.from(body), privateKey).toString('base64url')}`;
  };
  const good = { ...claims(), iat: 1, jti: 'j' };
  for (const json of ['null', '[]', '"x"', JSON.stringify({ ...good, tools: 'post_comment' }), JSON.stringify({ ...good, seq: '2' }), JSON.stringify({ ...good, exp: 'never' })]) {
    assert.deepEqual(verifyCapability(publicKey, sign(json), 'review'), { ok: false, status: 401, reason: 'malformed claims' }, json);
  }
  assert.equal(verifyCapability(publicKey, sign(JSON.stringify(good)), 'review').ok, true);
});

test('a tool server holds only the public key, which cannot sign', () => {
  assert.throws(() => crypto.sign(null, Buffer.from('x'), publicKey));
  // Keys are accepted as PEM or as base64 of the PEM (environment variables).
  const fromBase64 = loadPrivateKey(Buffer.from(pair.privateKeyPem).toString('base64'));
  assert.ok(verifyCapability(publicKey, mintCapability(fromBase64, claims()), 'review').ok);
});

test('during a rotation a server accepts tokens of the old and the new key, and no other', () => {
  const next = generateKeyPair();
  const both = [
    loadPublicKeys(`${pair.publicKeyPem}\n${next.publicKeyPem}`),
    loadPublicKeys([pair.publicKeyPem, next.publicKeyPem].map((k) => Buffer.from(k).toString('base64')).join(',')),
  ];
  for (const keys of both) {
    assert.equal(keys.length, 2);
    assert.ok(verifyCapability(keys, mintCapability(privateKey, claims()), 'review').ok);
    assert.ok(verifyCapability(keys, mintCapability(loadPrivateKey(next.privateKeyPem), claims()), 'review').ok);
    assert.equal(verifyCapability(keys, mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), claims()), 'review').ok, false);
  }
  assert.throws(() => loadPublicKeys(' '), /no public key/);
});
