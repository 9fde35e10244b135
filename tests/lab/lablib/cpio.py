# SPDX-License-Identifier: Apache-2.0
"""Writes initramfs archives in the kernel's "newc" cpio format.

Built in Python rather than with cpio(1) over a staging tree so device nodes
(/dev/console, needed before devtmpfs is mounted) need no root, and ownership
and timestamps are fixed, which keeps the archives reproducible. The kernel
accepts several archives concatenated, which is how the lab layers images.
"""
import os
import stat

_MAGIC = b"070701"


class Cpio:
    def __init__(self, out):
        self.out = out
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name = name.lstrip("/")
        nameb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nameb), 0]
        self.ino += 1
        hdr = _MAGIC + b"".join(b"%08X" % f for f in fields)
        self.out.write(hdr + nameb)
        self.out.write(b"\0" * (-(len(hdr) + len(nameb)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def dir(self, path, mode=0o755):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        parent = os.path.dirname(path)
        if parent:
            self.dir(parent)
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | mode, nlink=2)

    def _parent(self, path):
        parent = os.path.dirname(path.strip("/"))
        if parent:
            self.dir(parent)

    def data(self, path, data, mode=0o644):
        self._parent(path)
        self._entry(path, stat.S_IFREG | mode, data)

    def file(self, path, src, mode=None):
        """Copies src (following symlinks) to path in the archive."""
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = os.stat(src).st_mode & 0o777
        self.data(path, data, mode)

    def symlink(self, path, target):
        self._parent(path)
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path, major, minor, mode=0o600):
        self._parent(path)
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.out.write(b"\0" * (-self.out.tell() % 512))
