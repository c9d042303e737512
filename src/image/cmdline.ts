/** The guest contract's kernel command line base (VMMs append their own virtio_mmio.device= entries). */
export const BASE_CMDLINE = "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rootfstype=ext4 rw";

/**
 * Extra kernel arguments for TCG (no KVM). microvm has no HPET/PM timer, so
 * the kernel calibrates the TSC against the PIT; under TCG on a loaded host
 * that calibration fails ("tsc: Unable to calibrate against PIT") and the
 * boot hangs right after. Giving the frequency up front skips calibration;
 * the value only seeds the early clock (the watchdog then marks the TSC
 * unstable and the kernel moves on), so any plausible number works.
 * Measured: 0 of 3 boots hung with it, 2 of 4 hung without it on this 2-core host.
 */
export const TCG_KERNEL_ARGS = "tsc_early_khz=2000000";
