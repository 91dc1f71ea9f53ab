import { createPrivateKey, createPublicKey, generateKeyPairSync, hash, KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { RewindError } from './errors.js';

/** A key as PEM text (PKCS#8 private, SPKI public) or a node:crypto KeyObject. */
export type KeyInput = string | KeyObject;

/** A signing or public key that is missing, unreadable or not Ed25519. Nothing was signed or checked. */
export class SigningKeyError extends RewindError {
  constructor(message: string, hint = 'make a key pair with `rewind keygen`; the private key stays outside the database') {
    super('SIGNING_KEY', message, hint);
  }
}

export interface KeyPair {
  /** PKCS#8 PEM: keep it outside the database (a file only the sealing process reads, or REWIND_SIGNING_KEY). */
  privateKey: string;
  /** SPKI PEM: give it to whoever verifies. */
  publicKey: string;
  keyId: string;
}

/** A new Ed25519 key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** The Ed25519 private key in `input`. */
export function privateKeyFrom(input: KeyInput): KeyObject {
  const key = toKey(input, 'private');
  if (key.type !== 'private') throw new SigningKeyError('a public key cannot sign; give the private key');
  return key;
}

/** The Ed25519 public key in `input`; a private key gives its public half. */
export function publicKeyFrom(input: KeyInput): KeyObject {
  const key = toKey(input, 'public');
  return key.type === 'private' ? createPublicKey(key) : key;
}

function toKey(input: KeyInput, wanted: 'private' | 'public'): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) key = input;
  else if (typeof input === 'string' && input.includes('PRIVATE KEY')) key = parse(() => createPrivateKey(input));
  else if (typeof input === 'string' && input.includes('PUBLIC KEY')) key = parse(() => createPublicKey(input));
  else throw new SigningKeyError(`expected a ${wanted} key in PEM form (-----BEGIN ${wanted.toUpperCase()} KEY-----)`);
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SigningKeyError(`the key is ${key.asymmetricKeyType ?? 'a secret key'}, not Ed25519`);
  }
  return key;
}

function parse(make: () => KeyObject): KeyObject {
  try {
    return make();
  } catch (error) {
    throw new SigningKeyError(`the key cannot be read: ${(error as Error).message}`);
  }
}

/** A short name for a public key: the first 16 hex digits of SHA-256 of its raw 32 bytes. */
export function keyIdOf(key: KeyInput): string {
  const raw = publicKeyFrom(key).export({ format: 'jwk' }).x as string;
  return hash('sha256', Buffer.from(raw, 'base64url'), 'hex').slice(0, 16);
}

/** The bytes a signature covers: a label naming what is signed, then its canonical JSON, so no signature can be replayed as another kind. */
function message(label: string, body: unknown): Buffer {
  return Buffer.from(`${label}\n${canonicalJson(body)}`, 'utf8');
}

/** An Ed25519 signature (base64) of `body` under `label`. */
export function signStatement(label: string, body: unknown, key: KeyObject): string {
  return sign(null, message(label, body), key).toString('base64');
}

/** Whether `signature` is `key`'s signature of `body` under `label`. */
export function verifyStatement(label: string, body: unknown, signature: string, key: KeyObject): boolean {
  try {
    return verify(null, message(label, body), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
