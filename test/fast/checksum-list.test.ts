import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nameInList, parseChecksumList, parseReleaseFile } from '../../src/net/checksum-list.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('checksum lists', () => {
  test("sha256sum lines: Debian's ./paths, Ubuntu's * binary marks, openSUSE's bare names", () => {
    const list = parseChecksumList(`${A}  ./netboot/debian-installer/amd64/linux\n${B} *amd64/initrd\n${A}  x.iso\r\n`);
    assert.deepEqual(list.lookup('netboot/debian-installer/amd64/linux'), { sha256: A });
    assert.deepEqual(list.lookup('./amd64/initrd'), { sha256: B });
    assert.deepEqual(list.lookup('x.iso'), { sha256: A });
    assert.deepEqual(list.lookup('missing'), { problem: 'does not list missing' });
  });

  test('BSD-style lines and comments, as in the CHECKSUM files', () => {
    const list = parseChecksumList(`# Fedora.iso: 123 bytes\nSHA256 (images/pxeboot/vmlinuz) = ${A.toUpperCase()}\n`);
    assert.deepEqual(list.lookup('images/pxeboot/vmlinuz'), { sha256: A });
    assert.equal(list.size, 1);
  });

  test('a name listed twice with different sums is refused', () => {
    const list = parseChecksumList(`${A}  linux\n${B}  ./linux\n`);
    assert.match((list.lookup('linux') as { problem: string }).problem, /more than once/);
  });

  test("a release file's SHA256 section only (not MD5Sum's)", () => {
    const release = `Origin: Debian\nMD5Sum:\n ${'c'.repeat(32)} 1 main/SHA256SUMS\nSHA256:\n ${A}    78509 main/SHA256SUMS\nAcquire-By-Hash: yes\n`;
    assert.deepEqual(parseReleaseFile(release).lookup('main/SHA256SUMS'), { sha256: A });
    assert.equal(parseReleaseFile(`MD5Sum:\n ${A} 1 x\n`).size, 0);
  });

  test("a file's name: its path below the list's folder, else its last component", () => {
    assert.equal(nameInList('/d/images/netboot/linux', '/d/images/SHA256SUMS'), 'netboot/linux');
    assert.equal(nameInList('/elsewhere/linux', '/d/images/SHA256SUMS'), 'linux');
  });
});
