// Parallel fan-out: the same job in N fresh VMs at once, each deleted when its job ends, the
// results gathered in order. Run: node dist/examples/fan-out.js [N] [IMAGE]   (needs bangerd)
import { Banger, BangerError } from "banger";

const count = Number(process.argv[2] ?? "3");
const image = process.argv[3] ?? "default";
const banger = await Banger.connect();

async function job(i: number): Promise<{ worker: number; output: string; ms: number }> {
  const t0 = Date.now();
  await using vm = await banger.vms.create({ image, name: `fan-${process.pid}-${i}` });
  // Each worker gets its own input and computes on it in its own VM.
  await vm.files.write("/root/input.txt", `${Array.from({ length: 1000 }, (_, k) => k * (i + 1)).join("\n")}\n`);
  const output = (await vm.execText(["sh", "-c", "awk '{ s += $1 } END { print s }' /root/input.txt"])).trim();
  return { worker: i, output, ms: Date.now() - t0 };
}

const settled = await Promise.allSettled(Array.from({ length: count }, (_, i) => job(i)));
for (const [i, r] of settled.entries()) {
  if (r.status === "fulfilled") process.stdout.write(`worker ${r.value.worker}: sum ${r.value.output} (${r.value.ms} ms)\n`);
  else {
    const e: unknown = r.reason;
    process.stdout.write(`worker ${i}: ${e instanceof BangerError ? `${e.code}: ${e.message} (${e.opId ?? "-"})` : String(e)}\n`);
  }
}
process.exitCode = settled.every((r) => r.status === "fulfilled") ? 0 : 1;
