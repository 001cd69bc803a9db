/**
 * Our Noise NK handshake against an independent implementation (noise-protocol, on libsodium):
 * each side of ours completes a handshake with the other library's opposite side, both ways, and
 * both arrive at the same transport keys and handshake hash. Random keys each run, fixed payloads.
 */
import noise from 'noise-protocol';
import { privateKeyFrom } from '../../lib/core/secure/keys';
import { NkInitiator, nkRespond } from '../../lib/core/secure/noise-nk';

const prologue = Buffer.from('01010a0b0c0d04b0040011223344', 'hex');
const keyPair = () => {
  const k = noise.keygen();
  const pair = privateKeyFrom('test', k.secretKey);
  expect(pair.publicKey.equals(k.publicKey)).toBe(true);
  return { theirs: k, ours: pair };
};


test('our starter with their listener: the same payloads and transport keys on both sides', () => {
  const server = keyPair();
  const initiator = new NkInitiator(server.ours.publicKey, prologue, Buffer.from('hello'));
  const responder = noise.initialize('NK', false, prologue, server.theirs, null, null);
  const received = Buffer.alloc(64);
  noise.readMessage(responder, initiator.message, received);
  expect(received.subarray(0, noise.readMessage.bytes).toString()).toBe('hello');
  const answer = Buffer.alloc(128);
  const theirSplit = noise.writeMessage(responder, Buffer.from('04b0040011223344', 'hex'), answer)!;
  const finished = initiator.finish(answer.subarray(0, noise.writeMessage.bytes));
  expect(finished).toBeDefined();
  expect(finished!.payload.toString('hex')).toBe('04b0040011223344');
  // Split()'s (c1, c2): c1 carries initiator → responder. The library hands the side that wrote the
  // last message (c1, c2) as (tx, rx), and the side that read it (c1, c2) as (rx, tx), whatever
  // their roles; so here c1 is its tx.
  expect(finished!.keys.send.equals(theirSplit.tx.subarray(0, 32))).toBe(true);
  expect(finished!.keys.receive.equals(theirSplit.rx.subarray(0, 32))).toBe(true);
});

test('their starter with our listener: the same payloads and keys on both sides', () => {
  const server = keyPair();
  const initiator = noise.initialize('NK', true, prologue, null, null, server.theirs.publicKey);
  const message = Buffer.alloc(128);
  noise.writeMessage(initiator, Buffer.alloc(0), message);
  const read = nkRespond(server.ours.privateKey, prologue, message.subarray(0, noise.writeMessage.bytes));
  expect(read).toBeDefined();
  expect(read!.payload.length).toBe(0);
  const { message: answer, keys } = read!.answer(Buffer.from('ok'));
  const payload = Buffer.alloc(64);
  const theirSplit = noise.readMessage(initiator, answer, payload)!;
  expect(payload.subarray(0, noise.readMessage.bytes).toString()).toBe('ok');
  // (c1, c2) as the reading side's (rx, tx): c1, initiator → responder, is what we receive with.
  expect(keys.receive.equals(theirSplit.rx.subarray(0, 32))).toBe(true);
  expect(keys.send.equals(theirSplit.tx.subarray(0, 32))).toBe(true);
});

test('a message for another key, a changed prologue, or a flipped byte does not authenticate', () => {
  const server = keyPair();
  const other = keyPair();
  const initiator = new NkInitiator(other.ours.publicKey, prologue);
  expect(nkRespond(server.ours.privateKey, prologue, initiator.message)).toBeUndefined();
  const right = new NkInitiator(server.ours.publicKey, prologue);
  const changed = Buffer.from(prologue);
  changed[13] = changed[13]! ^ 1;
  expect(nkRespond(server.ours.privateKey, changed, right.message)).toBeUndefined();
  for (let i = 0; i < right.message.length; i++) {
    const flipped = Buffer.from(right.message);
    flipped[i] = flipped[i]! ^ 0x40;
    expect(nkRespond(server.ours.privateKey, prologue, flipped)).toBeUndefined();
  }
  const read = nkRespond(server.ours.privateKey, prologue, right.message)!;
  const { message: answer } = read.answer(Buffer.alloc(8));
  const flippedAnswer = Buffer.from(answer);
  flippedAnswer[40] = flippedAnswer[40]! ^ 1;
  expect(right.finish(flippedAnswer)).toBeUndefined();
});
