# SPDX-License-Identifier: Apache-2.0
"""What the lab boots: the Debian cloud kernel (downloaded once), and the
initramfs images built from it, busybox-static, the project's binaries and
QEMU. Images are cached in .lab-cache/images/ under a hash of everything
that goes into them, so they are rebuilt only when an input changed."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

from . import cpio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
LAB = os.path.join(ROOT, "tests", "lab")
CACHE = os.path.join(ROOT, ".lab-cache")
BUSYBOX = "/bin/busybox"
KERNEL_META = "linux-image-cloud-amd64"
# Host modules: KVM on AMD-V, and tap, bridge and loop devices for the device
# scenarios, and virtio-net for the link between two hosts (needs: peer)
# (cheap to load); their depends= fields add the rest.
HOST_MODULES = ["kvm-amd", "tun", "bridge", "loop", "virtio_pci", "virtio_net"]
# The project's binaries that travel into the lab, found under build/.
PROJECT_BINARIES = ["keel-vmm", "keel-img"]
QEMU = "/usr/bin/qemu-system-x86_64"
# Firmware QEMU opens for -M microvm and -M q35 with -kernel under KVM
# (seen with strace): qboot for microvm, SeaBIOS plus the option ROMs for q35.
QEMU_FIRMWARE = [
    "/usr/share/qemu/bios-microvm.bin",
    "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/kvmvapic.bin",
    "/usr/share/seabios/bios-256k.bin",
    "/usr/share/seabios/bios-microvm.bin",
]


def log(msg):
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# --- the kernel ------------------------------------------------------------
class Kernel:
    def __init__(self, root, version):
        self.root = root
        self.version = version
        self.vmlinuz = os.path.join(root, "boot", f"vmlinuz-{version}")
        self.moddir = os.path.join(root, "lib", "modules", version)

    def module(self, name):
        """Path of module NAME (dashes and underscores are the same)."""
        want = name.replace("-", "_") + ".ko"
        for dirpath, _, files in os.walk(self.moddir):
            for f in files:
                if f.replace("-", "_") == want:
                    return os.path.join(dirpath, f)
        raise FileNotFoundError(f"module {name} not in {self.moddir}")

    def modules_in_order(self, names):
        """The modules NAMES and what they depend on, dependencies first."""
        order, seen = [], set()

        def visit(name):
            path = self.module(name)
            if path in seen:
                return
            seen.add(path)
            deps = _run(["modinfo", "-F", "depends", path]).strip()
            for d in filter(None, deps.split(",")):
                visit(d)
            order.append(path)

        for n in names:
            visit(n)
        return order


def _kernel_package():
    def resolve():
        out = subprocess.run(["apt-cache", "depends", KERNEL_META],
                             capture_output=True, text=True).stdout
        m = re.search(r"Depends: (linux-image-[0-9.]+-[0-9]+-cloud-amd64)", out)
        return m.group(1) if m else None

    pkg = resolve()
    if not pkg:
        log("apt-cache does not know the cloud kernel yet: apt-get update")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        pkg = resolve()
    return pkg


def kernel():
    """The cached cloud kernel, downloaded and unpacked on first use."""
    kdir = os.path.join(CACHE, "kernel")
    pkg = _kernel_package()
    if not pkg:
        cached = sorted(glob.glob(os.path.join(kdir, "linux-image-*")))
        if not cached:
            raise RuntimeError(f"cannot resolve {KERNEL_META} with apt-cache")
        pkg = os.path.basename(cached[-1])
        log(f"apt-cache unavailable; using cached {pkg}")
    version = pkg[len("linux-image-"):]
    root = os.path.join(kdir, pkg)
    k = Kernel(root, version)
    if os.path.exists(k.vmlinuz) and os.path.isdir(k.moddir):
        return k
    dl = os.path.join(kdir, "download")
    os.makedirs(dl, exist_ok=True)
    log(f"downloading {pkg} (once; cached in .lab-cache/kernel)")
    subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", pkg], cwd=dl, check=True)
    debs = glob.glob(os.path.join(dl, f"{pkg}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download {pkg} left no .deb")
    tmp = root + ".tmp"
    subprocess.run(["rm", "-rf", tmp], check=True)
    subprocess.run(["dpkg-deb", "-x", debs[0], tmp], check=True)
    os.rename(tmp, root)
    for d in debs:
        os.unlink(d)
    return k


# --- cached images -----------------------------------------------------------
class Image:
    """An initramfs layer described as a list of entries, hashed before it
    is written so an unchanged layer is taken from the cache."""

    def __init__(self, name):
        self.name = name
        self.ops = []
        self.h = hashlib.sha256(name.encode())

    def _note(self, *parts):
        self.h.update(repr(parts).encode())

    def file(self, dst, src, mode=None):
        with open(src, "rb") as f:
            self.h.update(hashlib.sha256(f.read()).digest())
        if mode is None:
            mode = os.stat(src).st_mode & 0o777
        self._note("file", dst, mode)
        self.ops.append(("file", dst, src, mode))

    def data(self, dst, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        self._note("data", dst, data, mode)
        self.ops.append(("data", dst, data, mode))

    def symlink(self, dst, target):
        self._note("symlink", dst, target)
        self.ops.append(("symlink", dst, target))

    def dir(self, dst):
        self._note("dir", dst)
        self.ops.append(("dir", dst))

    def chardev(self, dst, major, minor):
        self._note("chardev", dst, major, minor)
        self.ops.append(("chardev", dst, major, minor))

    def elf(self, dst, src):
        """An executable plus every shared library it loads (ldd), and the
        ELF interpreter, at their own paths."""
        self.file(dst, src)
        for lib in elf_libraries(src):
            self.file(lib, lib)

    def build(self, cache=True):
        """Path of the written archive (from the cache when unchanged)."""
        d = os.path.join(CACHE, "images")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{self.name}-{self.h.hexdigest()[:16]}.cpio")
        if cache and os.path.exists(path):
            return path
        for old in glob.glob(os.path.join(d, f"{self.name}-*.cpio")):
            os.unlink(old)
        tmp = path + ".tmp"
        with open(tmp, "wb") as out:
            c = cpio.Cpio(out)
            for op in self.ops:
                getattr(c, op[0])(*op[1:])
            c.close()
        os.rename(tmp, path)
        return path


def elf_libraries(binary):
    libs = []
    for line in _run(["ldd", binary]).splitlines():
        m = re.search(r"(?:=> )?(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def add_busybox(img):
    img.file("/bin/busybox", BUSYBOX)
    for applet in _run([BUSYBOX, "--list-full"]).split():
        if applet != "bin/busybox" and not applet.endswith("linuxrc"):
            img.symlink("/" + applet, "/bin/busybox")
    for d in ("/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/etc"):
        img.dir(d)
    # init's stdio before devtmpfs is mounted.
    img.chardev("/dev/console", 5, 1)
    img.chardev("/dev/null", 1, 3)
    img.data("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")


def tool_path(name):
    """Where this machine has the program NAME (sbin included)."""
    path = shutil.which(name, path="/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        raise RuntimeError(f"{name} is not installed here (scripts/deps lab or bench)")
    return path


def add_tools(img, names):
    """Programs from this machine at their own paths, with their libraries."""
    for name in sorted(set(names)):
        path = tool_path(name)
        img.elf(path, path)


def find_binary(name):
    for cand in [os.path.join(ROOT, "build", name)] + sorted(
            glob.glob(os.path.join(ROOT, "build", "src", "*", name))):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def guest_image(k, scenarios):
    """The guest's initramfs: busybox, guest/init, every scenario's .guest
    script and the kernel modules the scenarios name, in load order."""
    img = Image("guest")
    add_busybox(img)
    add_tools(img, [t for s in scenarios for t in s.guest_tools])
    img.file("/init", os.path.join(LAB, "guest", "init"), 0o755)
    for path in sorted(glob.glob(os.path.join(LAB, "scenarios", "*.guest")) +
                       glob.glob(os.path.join(ROOT, "bench", "scenarios", "*.guest")) +
                       glob.glob(os.path.join(LAB, "demo", "*.guest"))):
        img.file("/scenarios/" + os.path.basename(path), path, 0o644)
    for s in scenarios:
        if s.guest_modules:
            order = k.modules_in_order(s.guest_modules)
            for ko in order:
                img.file(ko[len(k.root):], ko, 0o644)
            img.data(f"/scenarios/{s.name}.modules",
                     "".join(ko[len(k.root):] + "\n" for ko in order))
    return img.build()


def host_base_image(k):
    """Busybox, the kvm modules (and their load order) and the guest kernel."""
    img = Image("host-base")
    add_busybox(img)
    order = k.modules_in_order(HOST_MODULES)
    for ko in order:
        img.file(ko[len(k.root):], ko, 0o644)
    img.data("/lab/host-modules", "".join(ko[len(k.root):] + "\n" for ko in order))
    img.file("/lab/guest/vmlinuz", k.vmlinuz, 0o644)
    return img.build()


def qemu_image():
    """QEMU as a peer VMM inside the emulated host: big, so a layer of its
    own that only runs which need it carry."""
    img = Image("host-qemu")
    img.elf(QEMU, QEMU)
    for fw in QEMU_FIRMWARE:
        img.file(fw, fw, 0o644)
    return img.build()


def payload_image(plan, env, guest_initrd, scenarios, binaries):
    """The per-run layer: scripts, plan, guest initramfs, project binaries."""
    img = Image("host-payload")
    img.file("/init", os.path.join(LAB, "host", "init"), 0o755)
    img.file("/lab/lib/lab.sh", os.path.join(LAB, "host", "lab.sh"), 0o644)
    img.file("/lab/lib/run-scenarios", os.path.join(LAB, "host", "run-scenarios"), 0o755)
    img.file("/lab/peer/cgi-bin/run", os.path.join(LAB, "host", "peer-run"), 0o755)
    img.data("/lab/plan", plan)
    img.data("/lab/env", env)
    img.file("/lab/guest/initrd", guest_initrd, 0o644)
    for s in scenarios:
        for path in s.host_files():
            img.file("/lab/scenarios/" + os.path.basename(path), path, 0o644)
    for name, path in binaries.items():
        img.elf(f"/lab/bin/{name}", path)
    add_tools(img, [t for s in scenarios for t in s.host_tools])
    return img.build()
