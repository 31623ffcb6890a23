import { seededRandom } from './seeded-random.js';

/** Versions built from the characters that matter to both orders. */
export function generatedVersions(seed: number, count: number): string[] {
  const random = seededRandom(seed);
  const pieces = ['0', '1', '2', '9', '10', '01', 'a', 'b', 'rc', '~', '+', '.', '-', '^', '_', 'Z'];
  const versions: string[] = [];
  for (let i = 0; i < count; i++) {
    let version = String(Math.floor(random() * 3));
    const length = Math.floor(random() * 6);
    for (let j = 0; j < length; j++) version += pieces[Math.floor(random() * pieces.length)];
    versions.push(version);
  }
  return versions;
}
