/**
 * docs/protocol.md §13.1's test vectors are what the code computes: the block under the
 * `secure-vectors` marker is parsed and every line recomputed from its three private keys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INPUTS, computeVectors } from './vectors';
import { nodeAead, sodiumAead } from '../../lib/core/secure/aead';

function documented(): Map<string, string> {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const block = doc.split('<!-- secure-vectors -->')[1]!.split('```')[1]!;
  const lines = new Map<string, string>();
  for (const line of block.split('\n')) {
    const match = /^\s*(.+?): ([0-9a-f]+)$/.exec(line);
    if (match) lines.set(match[1]!, match[2]!);
  }
  return lines;
}

test('the documented inputs are the ones the vectors are computed from', () => {
  const doc = documented();
  expect(doc.get('listener static private key')).toBe(INPUTS.listenerStaticPrivate);
  expect(doc.get('starter ephemeral private key')).toBe(INPUTS.starterEphemeralPrivate);
  expect(doc.get('listener ephemeral private key')).toBe(INPUTS.listenerEphemeralPrivate);
});

test.each([nodeAead, sodiumAead()!])('every documented vector is what the code computes ($name)', (aead) => {
  const doc = documented();
  const computed = computeVectors(aead);
  expect(Object.keys(computed).length).toBeGreaterThan(10);
  for (const [name, hex] of Object.entries(computed)) expect(`${name}: ${doc.get(name)}`).toBe(`${name}: ${hex}`);
});
