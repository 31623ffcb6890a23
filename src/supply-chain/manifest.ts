// The library's parts, not its index: the index loads the schema files' paths (validation, for the tests only)
// through __dirname, which an ESM bundle does not have.
import * as Enums from '@cyclonedx/cyclonedx-library/Enums';
import * as Models from '@cyclonedx/cyclonedx-library/Models';
import * as Serialize from '@cyclonedx/cyclonedx-library/Serialize';
import * as Spec from '@cyclonedx/cyclonedx-library/Spec';
import { PackageURL } from 'packageurl-js';
import { basename } from 'node:path';
import type { ImageSpec } from '../config/image-spec.js';
import type { Inventory, InstalledPackage } from '../guest/inventory.js';

/**
 * A build input recorded in the manifest and the SBOM: the installer's files,
 * the answer file and the provisioning's files, with their digests (the next
 * build's skip-unchanged compares them).
 */
export interface BuildInput {
  role: 'installer-kernel' | 'installer-initrd' | 'installer-image' | 'answer-file' | 'provisioning';
  name: string;
  sha256: string;
}

/** `<stem>.manifest.json`: what the image holds, for people and for the next build's comparison. */
export function manifestJson(
  spec: ImageSpec,
  image: { name: string; size: number },
  inventory: Inventory,
  inputs: readonly BuildInput[] = [],
): string {
  const release = inventory.osRelease;
  const manifest = {
    image: image.name,
    date: spec.date,
    format: spec.format,
    // Bytes of the image file: the next build's changes report shows the difference.
    imageSize: image.size,
    distribution: {
      id: release.ID ?? '',
      release: release.VERSION_ID ?? '',
      codename: release.VERSION_CODENAME ?? '',
      name: release.PRETTY_NAME ?? release.NAME ?? '',
    },
    kernel: inventory.kernels.at(-1) ?? '',
    kernels: inventory.kernels,
    packageManager: inventory.packageManager,
    packages: inventory.packages.map((entry) => ({
      name: entry.name,
      version: entry.version,
      architecture: entry.architecture,
      source: entry.source ?? '',
      sourceVersion: entry.sourceVersion ?? '',
    })),
    inputs: inputs.map(({ role, name, sha256 }) => ({ role, name, sha256 })),
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** `<stem>.packages`: one `name version` a line, as Ubuntu's cloud image manifests. */
export function packagesText(inventory: Inventory): string {
  return inventory.packages.map((entry) => `${entry.name} ${entry.version}\n`).join('');
}

/** The purl namespace of a distribution (purl's deb and rpm types: the vendor). */
function vendorOf(id: string): string {
  if (id === 'rhel') return 'redhat';
  if (id.startsWith('opensuse') || id === 'sles') return 'opensuse';
  return id || 'unknown';
}

/** A package URL: pkg:deb/debian/NAME@VERSION?arch=…&distro=debian-12, pkg:rpm/fedora/NAME@V-R?arch=…&epoch=…. */
export function packageUrl(inventory: Inventory, entry: InstalledPackage): string {
  const release = inventory.osRelease;
  const type = inventory.packageManager === 'rpm' ? 'rpm' : 'deb';
  const qualifiers: Record<string, string> = {};
  if (entry.architecture) qualifiers.arch = entry.architecture;
  let version = entry.version;
  const epoch = /^(\d+):(.*)$/.exec(version);
  if (type === 'rpm' && epoch) {
    qualifiers.epoch = epoch[1];
    version = epoch[2];
  }
  if (release.ID) qualifiers.distro = release.VERSION_ID ? `${release.ID}-${release.VERSION_ID}` : release.ID;
  if (entry.source && entry.source !== entry.name) qualifiers.upstream = entry.source;
  return new PackageURL(type, vendorOf(release.ID ?? ''), entry.name, version, qualifiers, undefined).toString();
}

/**
 * The image's CycloneDX SBOM (spec 1.6, JSON), made with the CycloneDX
 * project's library: the image as the described component with its SHA-256,
 * one component a package with its purl, and the build's inputs (installer
 * files, answer file) as excluded file components with their digests.
 */
export function sbomJson(
  spec: ImageSpec,
  image: { name: string; sha256: string },
  inventory: Inventory,
  inputs: BuildInput[],
): string {
  const release = inventory.osRelease;
  const described = new Models.Component(Enums.ComponentType.OperatingSystem, image.name, {
    bomRef: 'image',
    version: release.VERSION_ID,
    description: release.PRETTY_NAME,
  });
  if (image.sha256) described.hashes.set(Enums.HashAlgorithm['SHA-256'], image.sha256);
  described.properties.add(new Models.Property('image-factory:format', spec.format));
  for (const kernel of inventory.kernels) described.properties.add(new Models.Property('image-factory:kernel', kernel));
  const bom = new Models.Bom({
    metadata: new Models.Metadata({ timestamp: new Date(), component: described }),
  });
  for (const entry of inventory.packages) {
    const purl = packageUrl(inventory, entry);
    const component = new Models.Component(Enums.ComponentType.Library, entry.name, {
      bomRef: purl,
      version: entry.version,
      purl,
    });
    if (entry.architecture)
      component.properties.add(new Models.Property('image-factory:architecture', entry.architecture));
    bom.components.add(component);
    described.dependencies.add(component.bomRef);
  }
  for (const input of inputs) {
    const component = new Models.Component(Enums.ComponentType.File, input.name, {
      bomRef: `input:${input.role}`,
      scope: Enums.ComponentScope.Excluded,
      description: `build input: ${input.role}`,
    });
    component.hashes.set(Enums.HashAlgorithm['SHA-256'], input.sha256);
    component.properties.add(new Models.Property('image-factory:build-input', input.role));
    bom.components.add(component);
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

/** `SHA256SUMS`-style lines (what `sha256sum -c` and attest-build-provenance's subject-checksums read). */
export function checksumLines(files: Array<{ path: string; sha256: string }>): string {
  return files.map((file) => `${file.sha256}  ${basename(file.path)}\n`).join('');
}
