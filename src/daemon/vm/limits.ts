export const GIB = 1024 ** 3;

/** Bounds on what a VM may ask for; checked at create so a typo fails with a clear message, not a VMM error. */
export const VM_LIMITS = {
  vcpus: { min: 1, max: 32 },
  memoryMib: { min: 128, max: 65536 },
  diskGib: { min: 1, max: 1024 },
  /** `--root-size` / `vm resize --root`: the root disk grown to this many GiB. */
  rootGib: { min: 1, max: 1024 },
} as const;

/** A disk size in GiB for `flag`, or why not. */
export function checkDiskGib(flag: string, v: number): string | undefined {
  const lim = VM_LIMITS.rootGib;
  return Number.isSafeInteger(v) && v >= lim.min && v <= lim.max ? undefined : `${flag} ${v} is out of range: it must be a whole number of GiB from ${lim.min} to ${lim.max}`;
}

export interface VmSize {
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly diskGib: number;
}

/** Every problem with the requested size, one message each (empty when fine). */
export function checkVmSize(size: VmSize, hostCpus?: number): string[] {
  const problems: string[] = [];
  const range = (label: string, flag: string, v: number, lim: { min: number; max: number }): void => {
    if (!Number.isSafeInteger(v) || v < lim.min || v > lim.max) problems.push(`${label} ${v} is out of range: ${flag} must be an integer from ${lim.min} to ${lim.max}`);
  };
  range("vcpus", "--vcpus", size.vcpus, VM_LIMITS.vcpus);
  range("memory", "--memory (MiB)", size.memoryMib, VM_LIMITS.memoryMib);
  range("disk", "--disk (GiB)", size.diskGib, VM_LIMITS.diskGib);
  if (hostCpus !== undefined && Number.isSafeInteger(size.vcpus) && size.vcpus > hostCpus && problems.length === 0) {
    problems.push(`vcpus ${size.vcpus} is more than this host's ${hostCpus} CPUs; use --vcpus ${hostCpus} or fewer`);
  }
  return problems;
}
