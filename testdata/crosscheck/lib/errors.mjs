// The error kinds of PROTOCOL.md section 8.1. Every failure in this
// implementation is a ProtocolError carrying exactly one of them; nothing
// else (no key material, no detail about which check failed) is reported
// to a peer-facing caller.

export const Kind = Object.freeze({
  invalidSignature: 'invalid_signature',
  badKey: 'bad_key',
  malformed: 'malformed',
  unknownType: 'unknown_type',
  authFailed: 'auth_failed',
  duplicate: 'duplicate',
  tooManySkipped: 'too_many_skipped',
  unknownPrekey: 'unknown_prekey',
  noSession: 'no_session',
  counterOverflow: 'counter_overflow',
  untrustedIdentity: 'untrusted_identity',
  unknownSession: 'unknown_session',
});

export const ALL_KINDS = Object.freeze(Object.values(Kind));

export class ProtocolError extends Error {
  constructor(kind) {
    super(kind);
    this.name = 'ProtocolError';
    this.kind = kind;
  }
}

/** Throws the error of the given kind. */
export function fail(kind) {
  throw new ProtocolError(kind);
}

/** The kind of a thrown value, or rethrows it if it is a programming error. */
export function kindOf(err) {
  if (err instanceof ProtocolError) return err.kind;
  throw err;
}
