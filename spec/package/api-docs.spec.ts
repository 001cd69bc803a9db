/** docs/api.md covers every export of rx-rudp, rx-rudp/testing and rx-rudp/cluster (regenerate with `npm run docs`). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');

test('docs/api.md has a line for every public export', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { exportedNames } = require(join(ROOT, 'scripts', 'api-docs.js')) as { exportedNames(): { module: string; names: string[] }[] };
  const doc = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
  const sections = doc.split(/^## /m);
  for (const { module, names } of exportedNames()) {
    const section = sections.find((s) => s.startsWith(`\`${module}\``));
    expect(section).toBeDefined();
    const missing = names.filter((n) => !section!.includes(`- **\`${n}\`**`));
    expect({ module, missing }).toEqual({ module, missing: [] });
  }
});
