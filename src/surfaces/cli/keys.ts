import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { privateKeyFrom, publicKeyFrom, SigningKeyError } from '../../events/signing.js';

/**
 * Where the CLI finds keys: a file named by a flag, else an environment
 * variable holding the PEM itself or the path of a PEM file. The signing key
 * never comes from the database it signs.
 */
function pem(source: string, what: string): string {
  if (source.includes('-----BEGIN')) return source;
  try {
    return readFileSync(source, 'utf8');
  } catch (error) {
    throw new SigningKeyError(`cannot read the ${what} ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The signing key from `--key FILE` or REWIND_SIGNING_KEY; undefined when neither is set. */
export function signingKeyIf(file: string | undefined): KeyObject | undefined {
  const source = file ?? process.env.REWIND_SIGNING_KEY;
  return source === undefined || source === '' ? undefined : privateKeyFrom(pem(source, 'signing key'));
}

/** The signing key, or a SigningKeyError saying how to give one. */
export function signingKey(file: string | undefined): KeyObject {
  const key = signingKeyIf(file);
  if (!key) {
    throw new SigningKeyError(
      'no signing key',
      'pass --key FILE or set REWIND_SIGNING_KEY (the PEM, or its path); `rewind keygen` makes a key pair',
    );
  }
  return key;
}

/** Public keys from `--public-key FILE…`, else REWIND_PUBLIC_KEY, else the public half of the signing key; may be none. */
export function publicKeys(files: string[] | undefined): KeyObject[] {
  if (files && files.length > 0) return files.map((f) => publicKeyFrom(pem(f, 'public key')));
  const env = process.env.REWIND_PUBLIC_KEY;
  if (env) return [publicKeyFrom(pem(env, 'public key'))];
  const own = signingKeyIf(undefined);
  return own ? [publicKeyFrom(own)] : [];
}

/** For commander: a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
