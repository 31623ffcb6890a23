import { deflateSync } from 'node:zlib';
import { libvirtUri } from '../host/libvirt.js';
import type { BuildContext } from '../context/build-context.js';

/** Where a screenshot of the installer's display goes: beside the console log. */
export function screenshotPath(consoleLog: string): string {
  return consoleLog.replace(/(\.console)?\.log$/, '') + '.screen.png';
}

/**
 * Take a screenshot of a VM's graphical console (configured with `vnc`):
 * `virsh screenshot` writes what qemu gives (a PPM), which is converted to
 * PNG at `png`; the PPM, at `ppm`, is removed. A failure only warns: the
 * screenshot adds to a failure's report and must not hide it. Returns the
 * PNG's path when one was written.
 */
export async function saveScreenshot(
  ctx: BuildContext,
  domain: string,
  files: { ppm: string; png: string },
): Promise<string | undefined> {
  const host = ctx.host.uninterruptible();
  const shot = await host.run(
    ['virsh', '-c', libvirtUri(host), 'screenshot', '--domain', domain, '--file', files.ppm],
    {
      allowFailure: true,
    },
  );
  try {
    if (shot.exitCode !== 0) throw new Error(shot.lastLines.join(' ').trim() || `virsh exited ${shot.exitCode}`);
    const image = await host.readFile(files.ppm);
    const png = isPng(image) ? image : ppmToPng(image);
    await host.remove(files.png);
    await host.writeFile(files.png, png, 0o644);
    ctx.reporter.info(`a screenshot of the VM's display is in ${files.png}`);
    return files.png;
  } catch (error) {
    ctx.reporter.warning(`could not keep a screenshot of the VM's display: ${(error as Error).message}`);
    return undefined;
  } finally {
    await host.remove(files.ppm);
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function isPng(data: Buffer): boolean {
  return data.subarray(0, 8).equals(PNG_SIGNATURE);
}

/** A binary PPM (P6, what qemu's screendump writes) with at most 8 bits a sample, as an RGB PNG. */
export function ppmToPng(ppm: Buffer): Buffer {
  const header = /^P6\s+(?:#[^\n]*\s+)*(\d+)\s+(?:#[^\n]*\s+)*(\d+)\s+(?:#[^\n]*\s+)*(\d+)\s/.exec(
    ppm.subarray(0, 512).toString('latin1'),
  );
  if (!header) throw new Error('not a binary PPM (P6) image');
  const [width, height, maxval] = [Number(header[1]), Number(header[2]), Number(header[3])];
  if (width === 0 || height === 0 || maxval === 0 || maxval > 255) {
    throw new Error(`unsupported PPM image: ${width}x${height}, maximum value ${maxval}`);
  }
  const pixels = ppm.subarray(header[0].length);
  const stride = width * 3;
  if (pixels.length < stride * height)
    throw new Error(`PPM image cut short: ${pixels.length} of ${stride * height} bytes`);
  // Each row starts with its filter type (0: none).
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < stride; x++) {
      const sample = pixels[y * stride + x];
      raw[y * (stride + 1) + 1 + x] = maxval === 255 ? sample : Math.round((sample * 255) / maxval);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits a sample, RGB, deflate, no filter method, not interlaced
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

let crcTable: Uint32Array | undefined;

/** PNG's CRC-32 (zlib's; node:zlib has crc32 only from Node 20.15 on). */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
