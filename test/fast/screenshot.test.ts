import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { crc32, ppmToPng, screenshotPath } from '../../src/vm/screenshot.js';

describe('the screenshot', () => {
  test('a PPM as qemu writes it becomes an RGB PNG with the same pixels', () => {
    const pixels = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90];
    const ppm = Buffer.concat([Buffer.from('P6\n# qemu screendump\n3 2\n255\n'), Buffer.from(pixels)]);
    const png = ppmToPng(ppm);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const chunks = new Map<string, Buffer>();
    for (let offset = 8; offset < png.length;) {
      const length = png.readUInt32BE(offset);
      const type = png.toString('latin1', offset + 4, offset + 8);
      const data = png.subarray(offset + 8, offset + 8 + length);
      assert.equal(png.readUInt32BE(offset + 8 + length), crc32(png.subarray(offset + 4, offset + 8 + length)), type);
      chunks.set(type, data);
      offset += 12 + length;
    }
    assert.deepEqual([...chunks.keys()], ['IHDR', 'IDAT', 'IEND']);
    const ihdr = chunks.get('IHDR') as Buffer;
    assert.deepEqual([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ihdr[8], ihdr[9]], [3, 2, 8, 2]);
    const rows = inflateSync(chunks.get('IDAT') as Buffer);
    assert.deepEqual([...rows], [0, ...pixels.slice(0, 9), 0, ...pixels.slice(9)]);
    assert.equal(crc32(Buffer.from('IEND')), 0xae426082);
  });

  test('anything but a binary PPM is refused with a reason', () => {
    assert.throws(() => ppmToPng(Buffer.from('P3\n1 1\n255\n0 0 0\n')), /not a binary PPM/);
    assert.throws(() => ppmToPng(Buffer.from('P6\n2 2\n255\nabc')), /cut short/);
    assert.throws(() => ppmToPng(Buffer.from('P6\n1 1\n65535\n\0\0\0\0\0\0')), /maximum value 65535/);
  });

  test('goes beside the console log', () => {
    assert.equal(
      screenshotPath('/out/Debian-12-server-2026-12-01.console.log'),
      '/out/Debian-12-server-2026-12-01.screen.png',
    );
  });
});
