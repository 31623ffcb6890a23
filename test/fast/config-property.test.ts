/**
 * Property-based: generated configuration files, values and argument lists,
 * fed to the configuration layer and to the command (in-process). Every run
 * ends with exit code 0 or 2 (a spec or a UsageError), never a stack trace,
 * never a file created, each within a CPU-time and memory bound.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { loadConfig } from '../../src/config/config-files.js';
import { applyOverrides, resolveImageSpec } from '../../src/config/image-spec.js';
import { OPTIONS, type OptionSpec, type Overrides } from '../../src/config/options.js';
import { UPLOAD_KEYS } from '../../src/config/unknown-keys.js';
import { UsageError } from '../../src/config/usage-error.js';
import { looksLikeCrash, runMain } from '../support/in-process-cli.js';

/** Generated inputs per property and run; `PROPERTY_RUNS` changes it (e.g. 20000 for a long search). */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
/**
 * Each input: at most this much CPU time (not wall-clock time, which a loaded machine stretches), and
 * the heap at most this much bigger after it.
 */
const CPU_BOUND_MS = 1000;
const HEAP_BOUND = 64 * 2 ** 20;

const scratch = mkdtempSync(join(tmpdir(), 'config-property-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const out = join(scratch, 'out');
mkdirSync(out);
const kernel = join(scratch, 'vmlinuz');
const answer = join(scratch, 'preseed.cfg');
writeFileSync(kernel, 'k');
writeFileSync(answer, 'a');
const configFile = join(scratch, 'generated.conf');
writeFileSync(configFile, '');
const before = readdirSync(scratch).sort();

const TABLE = OPTIONS as readonly OptionSpec[];
const OPTION_KEYS = TABLE.flatMap((entry) => (entry.key === undefined ? [] : [entry.key]));

/** Pieces of values: ordinary ones of every kind, and the ones that broke or could break the tool. */
const FRAGMENTS = [
  ...['', ' ', 'x', 'img', kernel, answer, scratch, '/dev/null', '/nonexistent', '~', '~/x', '.', '..', '-x', '--boot'],
  ...['raw', 'qcow2', 'zstd', 'inject', 'http', 'kvm', 'tcg', 'auto', 'yes', 'no', 'True', 'off', '1', '0', '-1'],
  ...['2G', '1 GiB', '512B', '0B', '1B', '99999999999P', '9'.repeat(30), '1e23', '3h', '600h', '90m', '1h30m', '0s'],
  ...['52:54:00:12:34:56', '01:00:00:00:00:00', ':1', 'localhost:1', '[::1]:1', '0.0.0.0,passwd=x:1', 'a=b', ','],
  ...['$', '$$', '${', '}', '${a}', '${a0}', '${DEFAULT:a}', '${img:linux}', '${x:y:z}', '${nope}', '${d:image}'],
  ...[
    '%',
    '%zz',
    '%E0%A4%A',
    'file:',
    'file:///x/%zz',
    'file://host/x',
    'file:~/x',
    'ftp://h/x',
    'http://',
    'https://h/',
  ],
  ...[
    'http://u:p@h/x',
    'https://u:s3cr@t/x@h/y',
    'rsync://u:pa/ss@h/m/',
    'u:pw@h::m/',
    'user@host:/srv/',
    'rsync://h/m/',
  ],
  ...['--inplace', '--append=1', '-av', '--progress', 'echo ${image}', '\\bx', '(', '[', '*', 'é', '\u0000', '\t'],
  ...['d', 'd, d', 'd,e', 'rsync', 'scp', 'mode=maximum', 'host-passthrough', 'debian12', 'linux2022'],
];
/**
 * Control characters, alone and as a terminal's escape sequences or a forged workflow command: any
 * value may hold them. Those that end a line in the file (\n, \r) are rarer, or few files would parse.
 */
const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).filter((c) => c !== '\n' && c !== '\r'),
  ...Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)),
  ...[
    '\u2028',
    '\u2029',
    '\x1b[2J',
    '\x1b]0;title\x07',
    '\x1b[31m',
    '\u2028::error::forged',
    '##[set-output name=x;]y',
  ],
];
const fragment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...FRAGMENTS) },
  { weight: 3, arbitrary: fc.constantFrom(...CONTROLS) },
  { weight: 1, arbitrary: fc.constantFrom('\n', '\r', '\r\n', '\r::error::forged') },
);
const value = fc.array(fragment, { minLength: 0, maxLength: 4 }).map((parts) => parts.join(''));
const keyName = fc.oneof(
  fc.constantFrom(...OPTION_KEYS, ...UPLOAD_KEYS, 'post-upload-command1', 'strict', 'data_dir', 'image'),
  fc.constantFrom('preseeed', 'imagesize', 'instal-timeout', 'a', 'debian_mirror', 'LINUX', 'Format'),
  fc.constantFrom('k\x1b[2J', 'k\u2028::error::forged', 'k\x9b31m'),
  fc.stringMatching(/^[a-z_-]{1,12}$/),
);
const sectionName = fc.constantFrom('DEFAULT', 'd', 'e', 'other', 'a/b', '-x', 'img ', ' img', 'e\x1b[2J');
const line = fc.oneof(
  { weight: 30, arbitrary: fc.tuple(keyName, fc.constantFrom(' = ', '=', ': ', ' : '), value).map((p) => p.join('')) },
  { weight: 2, arbitrary: sectionName.map((name) => `[${name}]`) },
  { weight: 1, arbitrary: fc.constantFrom('  continued', '# comment', ';x', '', 'no delimiter', '[', '= v', '\ufeff') },
);
/** A fan-out of references: `a0` and keys that each repeat the one before. */
const fanOut = fc
  .tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 30 }), fragment)
  .map(([levels, width, leaf]) =>
    [`a0 = ${leaf}`, ...Array.from({ length: levels }, (_, i) => `a${i + 1} = ${`\${a${i}}`.repeat(width)}`)].join(
      '\n',
    ),
  );
const section = fc
  .tuple(sectionName, fc.array(line, { maxLength: 8 }), fc.option(fanOut, { freq: 8 }))
  .map(([name, lines, fan]) => [`[${name}]`, ...lines, ...(fan ? [fan] : [])].join('\n'));
/**
 * The keys of a large section, thousands of them (made from a few generated values, not generated
 * one by one): each a value, or a reference to the key before it (chains longer than the depth bound,
 * restarting every `chain` keys), to the same key in [d], or to the top of a fan-out.
 */
const largeKeys = fc
  .record({
    count: fc.integer({ min: 1000, max: 10_000 }),
    // Values without line breaks: one that broke a line would make most large files unreadable.
    values: fc.array(
      value.map((text) => text.replace(/[\r\n]/g, '')),
      { minLength: 1, maxLength: 6 },
    ),
    chain: fc.integer({ min: 1, max: 40 }),
    shape: fc.constantFrom('values', 'chains', 'across', 'fan-out', 'mixed'),
  })
  .map(({ count, values, chain, shape }) => {
    // f4 expands to 7380 references: under the bound of one value, and a few dozen keys pass the section's.
    const fan = ['f0 = x', ...Array.from({ length: 4 }, (_, i) => `f${i + 1} = ${`\${f${i}}`.repeat(9)}`)];
    const keys = Array.from({ length: count }, (_, i) => {
      const own = values[i % values.length];
      const back = i % chain === 0 ? '' : `\${k${i - 1}}`;
      const reference = {
        values: '',
        chains: back,
        across: `\${d:k${i}}`,
        'fan-out': i % 2 === 0 ? '${f4}' : '',
        mixed: ['', back, `\${d:k${i}}`][i % 3],
      }[shape];
      return `k${i} = ${reference}${own}`;
    });
    return [...(shape === 'fan-out' ? fan : []), ...keys].join('\n');
  });
/** Rarely: a large section, as the image's own keys (the unknown-key check reads those) or as one of its own. */
const largeSection = fc.oneof(
  { weight: 12, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('img'), largeKeys) },
  { weight: 1, arbitrary: fc.tuple(sectionName, largeKeys) },
);
/** A configuration: usually a buildable [img] first, then generated sections. */
const imageLine = fc
  .tuple(
    fc.constantFrom(...OPTION_KEYS.filter((key) => !['linux', 'initrd', 'preseed', 'cache_dir'].includes(key))),
    fragment,
  )
  .map(([key, given]) => `${key} = ${given}`);
/** The installer's kernel: the real file mostly, sometimes a generated value (a bad file: URI, a URL). */
const kernelValue = fc.oneof({ weight: 3, arbitrary: fc.constant(kernel) }, { weight: 1, arbitrary: value });
const configText = fc
  .tuple(
    fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    kernelValue,
    fc.uniqueArray(imageLine, { maxLength: 3, selector: (text) => text.split(' ')[0] }),
    fc.uniqueArray(section, { maxLength: 3, selector: (text) => text.split('\n')[0].trim() }),
    largeSection,
  )
  .map(([base, linux, lines, sections, large]) => {
    const inImage = base && large?.[0] === 'img' ? [large[1]] : [];
    const ofItsOwn = large && !inImage.length ? [`[${large[0]}]\n${large[1]}`] : [];
    return (
      (base
        ? `[img]\nlinux = ${linux}\ninitrd = ${kernel}\npreseed = ${answer}\ncache_dir = ${scratch}/c\n${[...lines, ...inImage].join('\n')}\n`
        : '') + [...sections, ...ofItsOwn].join('\n')
    );
  });

/** The command's flags, each with a generated value where it takes one. */
const flag = fc.oneof(
  ...TABLE.filter((entry) => entry.cli !== undefined && entry.cli.long !== 'output-dir').map((entry) => {
    const cli = entry.cli as NonNullable<OptionSpec['cli']>;
    if (cli.arg === undefined) return fc.constant([cli.onlyNo ? `--no-${cli.long}` : `--${cli.long}`]);
    return value.map((given) => [`--${cli.long}`, given]);
  }),
  fc.constantFrom(['--no-log-file'], ['--colour'], ['-x'], ['--'], ['--help']),
);
const imageName = fc.oneof(
  { weight: 16, arbitrary: fc.constant('img') },
  { weight: 2, arbitrary: fc.constantFrom('DEFAULT', 'd', 'other', 'a/b', '..', '-x', '$', 'a${b}', 'x'.repeat(300)) },
  { weight: 1, arbitrary: value },
);
const argv = fc
  .tuple(fc.array(flag, { maxLength: 4 }), imageName)
  .map(([flags, image]) => [...flags.flat(), '-o', out, '--', image]);

/** What the command printed shows every control character as an escape (a newline and a tab aside). */
function assertPrintable(text: string, where: string): void {
  // eslint-disable-next-line no-control-regex
  const control = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/.exec(text);
  assert.equal(control, null, `U+${control?.[0].charCodeAt(0).toString(16)} printed as it is on ${where}`);
}

function assertNothingCreated(): void {
  assert.deepEqual(readdirSync(out), [], 'nothing created in the output folder');
  assert.deepEqual(readdirSync(scratch).sort(), before, 'nothing created next to the configuration');
}

/** The heap after a collection when the runtime allows one, else as it is. */
function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

describe('generated input (property-based, fast-check)', () => {
  test(`the command with --print-config: exit 0 or 2, no stack trace, nothing created (${RUNS} inputs)`, async () => {
    const found = { ok: 0, usage: 0 };
    await fc.assert(
      fc.asyncProperty(configText, argv, async (text, args) => {
        writeFileSync(configFile, text);
        const heap = heapUsed();
        const run = await runMain(['--print-config', ...args], { IMAGE_FACTORY_CONFIG: configFile, IMAGE: undefined });
        assert.equal(run.thrown, undefined, `main() threw: ${String(run.thrown)}`);
        assert.ok(run.code === 0 || run.code === 2, `exit code ${run.code}:\n${run.stderr}`);
        assert.ok(!looksLikeCrash(run.stderr), `a crash:\n${run.stderr}`);
        assert.ok(run.cpuMs < CPU_BOUND_MS, `took ${run.cpuMs.toFixed(0)} ms of CPU time`);
        assert.ok(heapUsed() - heap < HEAP_BOUND, 'the heap grew by more than 64 MiB');
        if (run.code === 2) assert.match(run.stderr, /error: /, 'exit code 2 says why');
        assertPrintable(run.stdout, 'stdout');
        assertPrintable(run.stderr, 'stderr');
        assertNothingCreated();
        found[run.code === 0 ? 'ok' : 'usage'] += 1;
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    assert.ok(found.ok > RUNS / 20 && found.usage > RUNS / 20, `both outcomes are generated: ${JSON.stringify(found)}`);
  });

  test(`the configuration as --dry-run resolves it: a spec or a UsageError (${RUNS} inputs)`, () => {
    const overrideKeys = TABLE.filter((entry) => entry.key !== undefined && (entry.cli || entry.input)).map(
      (entry) => entry.key as string,
    );
    const overrides = fc.dictionary(fc.constantFrom(...overrideKeys), fc.oneof(fragment, value, fc.boolean()), {
      maxKeys: 2,
    });
    let specs = 0;
    fc.assert(
      fc.property(configText, overrides, imageName, (text, given, image) => {
        writeFileSync(configFile, text);
        const heap = heapUsed();
        const cpu = process.cpuUsage();
        try {
          const { config } = loadConfig({ env: { IMAGE_FACTORY_CONFIG: configFile } });
          const knownImages = config.sections();
          const hadSection = applyOverrides(config, image, given as Overrides);
          const spec = resolveImageSpec(config, image, {
            outputDir: out,
            date: '2026-01-01',
            knownImages,
            hadSection,
            upload: true,
          });
          assert.equal(spec.name, image);
          specs += 1;
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          assert.ok(!looksLikeCrash(error.message), error.message);
        }
        const used = process.cpuUsage(cpu);
        assert.ok((used.user + used.system) / 1000 < CPU_BOUND_MS, 'within the CPU time bound');
        assert.ok(heapUsed() - heap < HEAP_BOUND, 'within the memory bound');
        assertNothingCreated();
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    // About one input in 25 resolves: some must, whatever the run's seed (RUNS / 40 failed now and then).
    assert.ok(specs > 0, `valid configurations are generated too (${specs})`);
  });

  test('the command with --dry-run on a few generated inputs: exit 0 or 2, nothing created', async () => {
    await fc.assert(
      fc.asyncProperty(configText, argv, async (text, args) => {
        writeFileSync(configFile, text);
        const run = await runMain(['--dry-run', ...args], { IMAGE_FACTORY_CONFIG: configFile, IMAGE: undefined });
        assert.equal(run.thrown, undefined, `main() threw: ${String(run.thrown)}`);
        assert.ok(run.code === 0 || run.code === 2, `exit code ${run.code}:\n${run.stderr}`);
        assert.ok(!looksLikeCrash(run.stderr), `a crash:\n${run.stderr}`);
        assertPrintable(run.stderr, 'stderr');
        assertNothingCreated();
      }),
      { numRuns: 12, includeErrorInReport: true },
    );
  });
});
