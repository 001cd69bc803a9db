/** The part of noise-protocol's API the interop spec uses. */
declare module 'noise-protocol' {
  interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }
  interface Split {
    tx: Buffer;
    rx: Buffer;
  }
  type HandshakeState = object;
  const noise: {
    keygen(): KeyPair;
    initialize(pattern: string, initiator: boolean, prologue: Uint8Array, s: KeyPair | null, e: KeyPair | null, rs: Uint8Array | null): HandshakeState;
    writeMessage: ((state: HandshakeState, payload: Uint8Array, out: Buffer) => Split | undefined) & { bytes: number };
    readMessage: ((state: HandshakeState, message: Uint8Array, out: Buffer) => Split | undefined) & { bytes: number };
  };
  export default noise;
}
