import assert from "node:assert/strict";
import { test } from "node:test";
import { buildFirecrackerArgv, buildJailerArgv } from "../../../src/vmm/firecracker/argv.js";
import { buildBootSteps, directPaths } from "../../../src/vmm/firecracker/boot-steps.js";
import { jailLayout, planJail } from "../../../src/vmm/firecracker/jail.js";
import { buildKvmProbeArgv, buildQemuArgv } from "../../../src/vmm/qemu/argv.js";
import { sampleSpec, VM_ID } from "./fixtures.js";

const D = `/var/lib/banger/vms/${VM_ID}`;

void test("qemu argv is pinned", () => {
  assert.deepEqual(buildQemuArgv("qemu-system-x86_64", sampleSpec(), { uid: 1000, gid: 1000 }), [
    "qemu-system-x86_64",
    "-name", `banger-${VM_ID}`,
    "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on",
    "-accel", "tcg",
    "-cpu", "max",
    "-smp", "2",
    "-m", "512M",
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
    "-device", "i8042",
    "-kernel", "/var/lib/banger/images/default/vmlinuz",
    "-initrd", "/var/lib/banger/images/default/initrd.img",
    "-append", "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rootfstype=ext4 rw",
    "-drive", `id=root,file=${D}/root.ext4,format=raw,if=none,cache=writeback,werror=report,rerror=report`,
    "-device", "virtio-blk-device,drive=root",
    "-drive", `id=work,file=${D}/work.ext4,format=raw,if=none,cache=writeback,werror=report,rerror=report`,
    "-device", "virtio-blk-device,drive=work",
    "-netdev", "tap,id=n0,ifname=tap-fc-01234567,script=no,downscript=no",
    "-device", "virtio-net-device,netdev=n0,mac=06:00:ac:10:00:02,guest_announce=off",
    "-chardev", `file,id=con0,path=${D}/console.log,append=on`,
    "-serial", "chardev:con0",
    "-device", "virtio-serial-device",
    "-chardev", "pipe,id=agent,path=/run/banger/vm/0123456789ab/agent",
    "-device", "virtserialport,chardev=agent,name=org.banger.agent",
    "-qmp", "unix:/run/banger/vm/0123456789ab/qmp.sock,server=on,wait=off",
    "-runas", "1000:1000",
  ]);
});

void test("qemu argv: the agent's pipe is beside the control socket, also when the helper names it through a descriptor", () => {
  const argv = buildQemuArgv("qemu-system-x86_64", sampleSpec({ controlSocket: "/proc/self/fd/7/qmp.sock" }), { uid: 1000, gid: 1000 });
  assert.equal(argv[argv.indexOf("pipe,id=agent,path=/proc/self/fd/7/agent") - 1], "-chardev");
  assert.throws(() => buildQemuArgv("qemu-system-x86_64", sampleSpec({ controlSocket: "/run/a,b/qmp.sock" }), { uid: 1, gid: 1 }), /agentPipe|controlSocket/);
});

void test("qemu argv: kvm uses -cpu host; no initrd means no -initrd", () => {
  const argv = buildQemuArgv("/usr/bin/qemu-system-x86_64", sampleSpec({ accel: "kvm", initrdPath: undefined }), { uid: 5, gid: 6 });
  assert.equal(argv[argv.indexOf("-accel") + 1], "kvm");
  assert.equal(argv[argv.indexOf("-cpu") + 1], "host");
  assert.equal(argv.includes("-initrd"), false);
});

void test("qemu argv: an install owned by root gets no -runas (qemu would exit: it cannot drop root to root)", () => {
  assert.equal(buildQemuArgv("/usr/bin/qemu-system-x86_64", sampleSpec(), { uid: 0, gid: 0 }).includes("-runas"), false);
  assert.equal(buildKvmProbeArgv("/usr/bin/qemu-system-x86_64", "/k", { uid: 0, gid: 0 }).includes("-runas"), false);
  const probe = buildKvmProbeArgv("/usr/bin/qemu-system-x86_64", "/k", { uid: 1000, gid: 1001 });
  assert.equal(probe[probe.indexOf("-runas") + 1], "1000:1001");
});

void test("qemu argv refuses values that would smuggle qemu options", () => {
  const runAs = { uid: 1000, gid: 1000 };
  for (const over of [
    { rootDisk: `${D}/root.ext4,if=none,file=/etc/shadow` },
    { workDisk: `${D}/w\n.ext4` },
    { tap: "tap-fc-01234567,script=/tmp/x" },
    { mac: "06:00:ac:10:00:02,netdev=x" },
    { consoleLog: `${D}/c.log,path=/etc/passwd` },
    { controlSocket: "/run/x.sock,server=on" },
    { kernelPath: "" },
    { cmdline: "console=ttyS0\ninit=/bin/sh" },
  ]) {
    assert.throws(() => buildQemuArgv("qemu-system-x86_64", sampleSpec(over), runAs), /cannot be passed to qemu|control character/, JSON.stringify(over));
  }
});

void test("firecracker argv is pinned and frozen", () => {
  const argv = buildFirecrackerArgv("/usr/bin/firecracker", { apiSocket: "/run/banger/vm/0123456789ab/api.sock", vmId: VM_ID });
  assert.deepEqual(argv, ["/usr/bin/firecracker", "--api-sock", "/run/banger/vm/0123456789ab/api.sock", "--id", VM_ID]);
  assert.ok(Object.isFrozen(argv));
  assert.throws(() => buildFirecrackerArgv("firecracker", { apiSocket: "--no-seccomp", vmId: VM_ID }), /cannot be passed/);
  assert.throws(() => buildFirecrackerArgv("firecracker", { apiSocket: "/x", vmId: "a_b" }), /instance id/);
});

void test("jailer argv: --id only before --, numeric non-root ids, in-jail socket", () => {
  const argv = buildJailerArgv({ jailerBin: "/usr/bin/jailer", firecrackerBin: "/usr/bin/firecracker", vmId: VM_ID, uid: 1000, gid: 1001, chrootBaseDir: "/var/lib/banger/jail", apiSocketInJail: "/api.sock" });
  assert.deepEqual(argv, ["/usr/bin/jailer", "--id", VM_ID, "--exec-file", "/usr/bin/firecracker", "--uid", "1000", "--gid", "1001", "--chroot-base-dir", "/var/lib/banger/jail", "--", "--api-sock", "/api.sock"]);
  assert.equal(argv.filter((a) => a === "--id").length, 1, "firecracker gets --id from the jailer; repeating it is exit 153");
  assert.throws(() => buildJailerArgv({ jailerBin: "j", firecrackerBin: "f", vmId: VM_ID, uid: 0, gid: 0, chrootBaseDir: "/b", apiSocketInJail: "/a" }), /non-root/);
});

void test("firecracker boot steps: names, order and bodies are pinned", () => {
  const spec = sampleSpec({ controlSocket: "/run/banger/vm/0123456789ab/api.sock", metricsPath: `${D}/metrics.json`, vsock: { cid: 3, udsPath: "/run/banger/vm/0123456789ab/vsock.sock" } });
  const steps = buildBootSteps(spec, directPaths(spec));
  assert.deepEqual(steps.map((s) => s.name), ["logger", "metrics", "machine-config", "boot-source", "drive:rootfs", "drive:work", "network-interface:net0", "vsock", "InstanceStart"]);
  assert.deepEqual(steps.map((s) => `${s.method} ${s.path}`), ["PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs", "PUT /drives/work", "PUT /network-interfaces/net0", "PUT /vsock", "PUT /actions"]);
  assert.deepEqual(steps.map((s) => s.body), [
    { log_path: `${D}/vmm.log`, level: "Info", show_level: true, show_log_origin: false },
    { metrics_path: `${D}/metrics.json` },
    { vcpu_count: 2, mem_size_mib: 512, smt: false },
    { kernel_image_path: "/var/lib/banger/images/default/vmlinuz", boot_args: spec.cmdline, initrd_path: "/var/lib/banger/images/default/initrd.img" },
    { drive_id: "rootfs", path_on_host: `${D}/root.ext4`, is_root_device: true, is_read_only: false },
    { drive_id: "work", path_on_host: `${D}/work.ext4`, is_root_device: false, is_read_only: false },
    { iface_id: "net0", host_dev_name: "tap-fc-01234567", guest_mac: "06:00:ac:10:00:02" },
    { guest_cid: 3, uds_path: "/run/banger/vm/0123456789ab/vsock.sock" },
    { action_type: "InstanceStart" },
  ]);
  for (const s of steps.filter((x) => /^\/(drives|network-interfaces)\//.test(x.path))) {
    assert.match(s.path.split("/")[2] ?? "", /^[A-Za-z0-9_]+$/, `firecracker ids allow no hyphens: ${s.path}`);
  }
  // Without metrics/vsock those steps disappear rather than send empty bodies.
  assert.deepEqual(buildBootSteps(sampleSpec(), directPaths(sampleSpec())).map((s) => s.name), ["logger", "machine-config", "boot-source", "drive:rootfs", "drive:work", "network-interface:net0", "InstanceStart"]);
});

void test("jail plan: hard links for files, mknod for dm devices, in-jail paths for the API", () => {
  const spec = sampleSpec({ rootDisk: "/dev/mapper/fc-rootfs-0123456789abcdef" });
  const layout = jailLayout("/srv/jailer", "/usr/bin/firecracker", VM_ID);
  assert.equal(layout.chrootBaseDir, "/srv/jailer");
  assert.equal(layout.root, `/srv/jailer/firecracker/${VM_ID}/root`);
  assert.equal(layout.apiSocketHost, `/srv/jailer/firecracker/${VM_ID}/root/api.sock`);
  const plan = planJail(spec, layout, (p) => p.startsWith("/dev/"));
  assert.deepEqual(plan.ops, [
    { op: "mkdir", path: layout.root },
    { op: "link", from: spec.kernelPath, to: `${layout.root}/vmlinux` },
    { op: "link", from: spec.initrdPath, to: `${layout.root}/initrd.img` },
    { op: "mknod", from: "/dev/mapper/fc-rootfs-0123456789abcdef", to: `${layout.root}/rootfs` },
    { op: "link", from: spec.workDisk, to: `${layout.root}/work` },
  ]);
  assert.deepEqual(plan.paths, { kernel: "/vmlinux", initrd: "/initrd.img", rootDisk: "/rootfs", workDisk: "/work", logPath: "/firecracker.log", metricsPath: undefined, vsockUds: undefined });
});
