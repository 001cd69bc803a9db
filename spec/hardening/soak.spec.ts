/**
 * Soak, the 30-second run that is part of npm test: scripts/soak.js with two processes, 50
 * connections, random message sizes both ways, 5 % loss and 3 % reordering on every datagram
 * sent; every message checked by sequence number, checksum and byte for byte; fails on any loss,
 * duplicate, reorder, corruption, growth of the live heap (after full GCs) from the warm-up to the
 * end, or RSS beyond the script's bounds (its header says why both peers pin V8's semi-space). (The 10-minute run's
 * figures are in the README's Reliability section: `npm run soak -- --minutes 10`.)
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { withFigures } from '../figures';
import { ROOT, ensureBuilt } from './helpers';

jest.setTimeout(150_000);

test('npm run soak -- --seconds 30: no loss, duplicate, reorder, corruption or memory growth', async () => {
  ensureBuilt();
  const proc = spawn(process.execPath, [join(ROOT, 'scripts', 'soak.js'), '--seconds', '30'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('close', resolve));
  const line = output.split('\n').find((l) => l.startsWith('SOAK-RESULT '));
  const result = line === undefined ? { ok: false, failures: ['no SOAK-RESULT line'] } : (JSON.parse(line.slice('SOAK-RESULT '.length)) as Record<string, unknown>);
  // The script's figures are shown only when the run failed.
  withFigures(
    () => output.split('\n').filter((l) => l.startsWith('soak:') || l.startsWith('  ')).join('\n'),
    () => {
      expect(result.failures).toEqual([]);
      expect(result.ok).toBe(true);
      expect(code).toBe(0);
      expect(result.connections).toBe(50);
      expect(result.messages as number).toBeGreaterThan(1000);
    },
  );
});
