import * as core from '@actions/core';
import type { Layout } from '../guest/layout.js';
import { basename } from 'node:path';
import { formatBytes, formatDuration } from '../common/units.js';
import type { BootCheck } from '../pipeline/guest-ssh.js';
import type { BuildResult } from '../pipeline/build.js';
import { artifactsOf, firstImage, pathOf, type ArtifactRole } from '../pipeline/artifacts.js';
import type { GeneralizeRow } from '../guest/generalize.js';
import { changeCounts, sizeChange, type Changes } from '../supply-chain/changes.js';
import { describeFirmware } from '../vm/virt-install.js';
import { STEP_TITLES, type Step } from '../common/reporter.js';
import { printableLine, printableLines } from '../common/printable-text.js';
import type { StepRecord } from './action-reporter.js';
import { historyCharts, stepComparisonRows } from './metrics-charts.js';

export interface BuildSummary {
  image: string;
  steps: StepRecord[];
  result?: BuildResult;
  failure?: { step?: Step; message: string };
  /** The Actions cache key restored or saved, when there was one. */
  cache?: { restored?: string; saved?: string; manifestRestored?: string; manifestSaved?: string };
}

function escapeMarkup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Text for a cell, a heading or a paragraph: HTML escaped, and on one line,
 * every control character shown as an escape (printable-text.ts). A blank
 * line ends an HTML block in GitHub's Markdown: a guest file name with one in
 * it would end the table, and what follows would render as Markdown (links,
 * images).
 */
function escapeHtml(text: string): string {
  return escapeMarkup(printableLine(text));
}

const code = (text: string): string => `<code>${escapeHtml(text)}</code>`;

/** The job summary as Markdown/HTML, without writing it. */
export function renderSummary(summary: BuildSummary): string {
  const parts: string[] = [];
  const { result, failure } = summary;
  parts.push(`<h2>${failure ? '❌' : '✅'} Image ${escapeHtml(summary.image)}${failure ? ' failed' : ''}</h2>`);

  if (failure) {
    const where = failure.step
      ? `The ${escapeHtml(failure.step)} step (${escapeHtml(STEP_TITLES[failure.step])}) failed:`
      : 'The build failed:';
    const message =
      failure.message.length > MAX_FAILURE_CHARACTERS
        ? `${failure.message.slice(0, MAX_FAILURE_CHARACTERS)}\n… (${failure.message.length - MAX_FAILURE_CHARACTERS} characters more in the log)`
        : failure.message;
    // The message keeps its lines, in a <pre> block of its own: that ends only at </pre>, which escaping rules out.
    parts.push(`<p>${where}</p>`, `<pre>${escapeMarkup(printableLines(message))}</pre>`);
  }

  if (result && !result.changed)
    parts.push(`<p>Unchanged since the previous build: nothing was published or uploaded (skip-unchanged).</p>`);
  else if (result) parts.push(table(undefined, resultRows(summary, result)));

  if (summary.steps.length) {
    const rows = summary.steps.map((step): [string, string, string, string] => [
      escapeHtml(step.step),
      escapeHtml(STEP_TITLES[step.step]),
      formatDuration(step.durationMs),
      step.ok ? 'done' : '<strong>failed</strong>',
    ]);
    const total = summary.steps.reduce((sum, step) => sum + step.durationMs, 0);
    rows.push(['', '<strong>total</strong>', `<strong>${formatDuration(total)}</strong>`, '']);
    parts.push(`<h3>Steps</h3>\n${table(['Step', 'What', 'Duration', 'Result'], rows)}`);
  }

  if (result?.history.length) parts.push(historySection(result));

  if (result?.layout) parts.push(layoutSection(result.layout));

  if (result?.generalized.length) parts.push(generalizationSection(result.generalized));

  if (result?.changes) parts.push(changesSection(result.changes, pathOf(result.artifacts, 'changes')));

  if (result?.bootChecks?.length) parts.push(bootChecksSection(result.bootChecks));

  if (result?.uploads.length) {
    const rows = result.uploads.map((upload): [string, string, string, string, string] => [
      escapeHtml(upload.destination),
      // upload_target with any password replaced.
      code(upload.target),
      upload.ok
        ? `uploaded and verified${upload.references?.length ? `: ${upload.references.map(code).join(', ')}` : ''}`
        : `failed: ${escapeHtml(upload.error ?? '')}`,
      String(upload.attempts),
      formatDuration(upload.durationMs),
    ]);
    parts.push(`<h3>Uploads</h3>\n${table(['Destination', 'Target', 'Result', 'rsync runs', 'Duration'], rows)}`);
  } else if (result) {
    parts.push('<p>Not uploaded (no upload destinations, or upload: false).</p>');
  }
  return `${parts.join('\n\n')}\n`;
}

/** The boot test's checks: command, exit code, seconds. */
function bootChecksSection(checks: readonly BootCheck[]): string {
  const rows = checks.map((check): [string, string, string] => [
    code(check.command),
    String(check.exitCode),
    check.seconds.toFixed(1),
  ]);
  return `<h3>Checks in the booted image</h3>\n${table(['Command', 'Exit code', 'Seconds'], rows)}`;
}

/** The finished image in rows: what it is, where, its checksum, and how the build got there. */
function resultRows(summary: BuildSummary, result: BuildResult): Array<[string, string]> {
  const image = firstImage(result.artifacts);
  const size = image.size ?? 0;
  const name = (role: ArtifactRole): string => code(basename(pathOf(result.artifacts, role) ?? ''));
  const rows: Array<[string, string]> = [
    ['Image', code(basename(image.final))],
    ['Path', code(image.final)],
    [
      'Format',
      escapeHtml(
        artifactsOf(result.artifacts, 'image')
          .map((file) => file.format)
          .join(', '),
      ),
    ],
    ['Size', `${formatBytes(size)} (${size} bytes; ${formatBytes(result.diskUsage)} on disk)`],
    ['SHA-256', code(image.sha256 ?? '')],
    ['Distribution', escapeHtml(result.distribution || 'unknown (no /etc/os-release)')],
    ['Kernel', result.kernel ? code(result.kernel) : 'none found'],
    ['Packages', `${result.packageCount} (${name('manifest')}, SBOM ${name('sbom')})`],
    [
      'Checksums',
      result.signingFingerprint
        ? `${name('sums')}, signed: ${name('sums-signature')} by key ${code(result.signingFingerprint)}`
        : name('sums'),
    ],
    ['Architecture', escapeHtml(result.arch)],
    ['Accelerator', escapeHtml(result.accelerator)],
    ['Firmware', escapeHtml(describeFirmware(result.firmware))],
    ['Installer', result.cacheHit ? 'from the cache (nothing downloaded)' : 'downloaded'],
    ['Installer verified', verificationCell(result)],
  ];
  if (summary.cache?.restored) rows.push(['Restored from the Actions cache', code(summary.cache.restored)]);
  if (summary.cache?.saved) rows.push(['Saved to the Actions cache', code(summary.cache.saved)]);
  if (summary.cache?.manifestRestored)
    rows.push(['Previous manifest from the Actions cache', code(summary.cache.manifestRestored)]);
  if (summary.cache?.manifestSaved)
    rows.push(['Manifest saved to the Actions cache', code(summary.cache.manifestSaved)]);
  for (const more of artifactsOf(result.artifacts, 'image').slice(1)) {
    rows.push([
      `Image (${escapeHtml(more.format ?? '')})`,
      `${code(more.final)}, ${formatBytes(more.size ?? 0)}, SHA-256 ${code(more.sha256 ?? '')}`,
    ]);
  }
  const raw = pathOf(result.artifacts, 'raw');
  if (raw) rows.push(['Raw image kept', code(raw)]);
  if (result.bootSeconds !== undefined) {
    rows.push([
      'Boot test',
      `came up in ${result.bootSeconds.toFixed(1)} s${result.cloudInitFinished ? ', cloud-init finished' : ''}`,
    ]);
  }
  return rows;
}

/** The last builds as charts, and this build's steps beside the previous build's. */
function historySection(result: BuildResult): string {
  const previous = result.history.at(-1);
  const builds = [...result.history, result.metrics];
  const rows = previous
    ? stepComparisonRows(result.metrics, previous).map((row) => row.map((text) => escapeHtml(text)))
    : [];
  return (
    `<h3>The last ${builds.length} builds</h3>\n\n${historyCharts(builds)}\n\n` +
    `<h3>Steps against ${previous ? escapeHtml(previous.image) : 'the previous build'}</h3>\n` +
    table(['Step', 'This build', 'Previous build', 'Difference'], rows)
  );
}

/** What changed since the previous manifest: the counts and the size, then one row a package changed. */
function changesSection(changes: Changes, path: string | undefined): string {
  const since = changes.previous.image || changes.previous.source;
  const head =
    `<h3>Changes since ${escapeHtml(since)}</h3>\n` +
    `<p>${escapeHtml(changeCounts(changes))}; image size ${escapeHtml(sizeChange(changes))}` +
    `${path ? ` (${code(basename(path))})` : ''}.</p>`;
  // Each row made only when it is shown: a release upgrade changes thousands.
  const rows: Array<() => string[]> = [
    ...changes.added.map((entry) => () => [
      'added',
      code(entry.name),
      escapeHtml(entry.architecture),
      '',
      code(entry.version),
    ]),
    ...changes.removed.map((entry) => () => [
      'removed',
      code(entry.name),
      escapeHtml(entry.architecture),
      code(entry.version),
      '',
    ]),
    ...(['upgraded', 'downgraded'] as const).flatMap((kind) =>
      changes[kind].map((entry) => () => [
        kind,
        code(entry.name),
        escapeHtml(entry.architecture),
        code(entry.from),
        code(entry.to),
      ]),
    ),
  ];
  if (!rows.length) return head;
  // A whole release upgrade is in the .changes file.
  const shown = boundedTable(['Change', 'Package', 'Architecture', 'Before', 'After'], rows, {
    ...CHANGES_BOUND,
    leftOut: (count) => `… ${count} more in the .changes file`,
  });
  return `${head}\n${shown}`;
}

/**
 * GitHub drops a job summary over 1 MiB: each long table shows at most so
 * many rows and so many bytes of them (a guest's file name may be 4 KiB, and
 * four times that with its control characters shown), and says how many it
 * left out and where they all are.
 */
const CHANGES_BOUND = { maxRows: 500, maxBytes: 256 * 1024 };
const GENERALIZED_BOUND = { maxRows: 200, maxBytes: 128 * 1024 };
const MAX_FAILURE_CHARACTERS = 64 * 1024;

/**
 * What generalisation did: one row an operation and outcome with how many
 * paths (15,000 files in /tmp are one row), then the paths themselves, as many
 * as the bound lets through.
 */
function generalizationSection(generalized: readonly GeneralizeRow[]): string {
  const counts = new Map<string, { operation: string; done: string; paths: number }>();
  for (const row of generalized) {
    const key = `${row.operation}\u0000${row.done}`;
    const entry = counts.get(key) ?? { operation: row.operation, done: row.done, paths: 0 };
    entry.paths += 1;
    counts.set(key, entry);
  }
  const byOperation = [...counts.values()].map((entry) => [
    escapeHtml(entry.operation),
    escapeHtml(entry.done),
    String(entry.paths),
  ]);
  const paths = generalized.map((row) => () => [escapeHtml(row.operation), code(row.path), escapeHtml(row.done)]);
  const detail = boundedTable(['Operation', 'Path', 'Done'], paths, {
    ...GENERALIZED_BOUND,
    leftOut: (count) => `… ${count} more (the build's log lists every path)`,
  });
  return (
    `<h3>Generalisation</h3>\n${table(['Operation', 'Done', 'Paths'], byOperation)}\n\n` +
    `<details><summary>Each path (${generalized.length})</summary>\n\n${detail}\n\n</details>`
  );
}

/**
 * A table of the first rows that keep within `bound`, and a last row that
 * says how many did not (`leftOut`). Rows are made as they are needed.
 */
function boundedTable(
  header: string[],
  rows: Array<() => string[]>,
  bound: { maxRows: number; maxBytes: number; leftOut: (count: number) => string },
): string {
  const shown: string[][] = [];
  let bytes = 0;
  for (const make of rows.slice(0, bound.maxRows)) {
    const row = make();
    const size = row.reduce((sum, cell) => sum + Buffer.byteLength(cell) + '<td></td>'.length, 0);
    if (bytes + size > bound.maxBytes) break;
    shown.push(row);
    bytes += size;
  }
  if (rows.length > shown.length)
    shown.push(['', escapeHtml(bound.leftOut(rows.length - shown.length)), ...header.slice(2).map(() => '')]);
  return table(header, shown);
}

/** What the installer files were verified against: files and sums, the list's hash, the signing keys. */
function verificationCell(result: BuildResult): string {
  const chain = result.installer.verification;
  if (!chain) return 'no (no installer-checksums set)';
  const files = Object.entries(chain.files).map(
    ([key, file]) => `${escapeHtml(key)} ${code(file.name)} ${code(file.sha256)}`,
  );
  const parts = [
    `${files.join(', ')} against ${code(chain.checksums.display)} (SHA-256 ${code(chain.checksums.sha256)})`,
  ];
  if (chain.release) parts.push(`listed in ${code(chain.release.display)} (SHA-256 ${code(chain.release.sha256)})`);
  if (chain.signature) parts.push(`detached signature ${code(chain.signature.display)}`);
  if (chain.fingerprints.length) {
    const signers = chain.signers.length ? ` (${escapeHtml(chain.signers.join('; '))})` : '';
    parts.push(`signed by ${chain.fingerprints.map(code).join(', ')}${signers}, keyring ${code(chain.keyring ?? '')}`);
  } else parts.push('<strong>unsigned</strong>');
  return parts.join('; ');
}

function table(header: string[] | undefined, rows: string[][]): string {
  const lines = rows.map((row) => `<tr>${row.map((cell) => `<td>${cell}</td>`).join('')}</tr>`);
  if (header) lines.unshift(`<tr>${header.map((cell) => `<th>${cell}</th>`).join('')}</tr>`);
  return `<table>\n${lines.join('\n')}\n</table>`;
}

/** Append the summary to the job's page. Optional: a host without GITHUB_STEP_SUMMARY, or a write error, only warns. */
export async function writeSummary(summary: BuildSummary): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    await core.summary.addRaw(renderSummary(summary)).write();
  } catch (error) {
    core.warning(`Could not write the job summary: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    core.summary.emptyBuffer();
  }
}

/** The disk's layout: the partition table, and a row a file system (or what was left alone) with what was done. */
function layoutSection(layout: Layout): string {
  const rows = [
    ...layout.filesystems.map((fs): [string, string, string, string, string] => [
      code(fs.device),
      escapeHtml(fs.type),
      code(fs.uuid || '-'),
      fs.mountPoint ? code(fs.mountPoint) : '-',
      escapeHtml(fs.action + (fs.removedLogs?.length ? `; installer logs removed: ${fs.removedLogs.join(', ')}` : '')),
    ]),
    ...layout.leftAlone.map((item): [string, string, string, string, string] => [
      code(item.device),
      '-',
      '-',
      '-',
      escapeHtml(`left alone: ${item.why}`),
    ]),
  ];
  const partitions = layout.partitions
    .map((p) => `${p.number}: ${escapeHtml(p.typeName)} (${formatBytes(p.size)})`)
    .join(', ');
  return (
    `<h3>Layout</h3>\n<p>Partition table: ${escapeHtml(layout.table)}${partitions ? `; partitions ${partitions}` : ''}.</p>\n` +
    table(['Device', 'Type', 'UUID', 'Mounted at', 'Done'], rows)
  );
}
