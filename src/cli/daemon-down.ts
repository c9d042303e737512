/** What fixes a daemon that does not answer, for how this banger was set up. */
export function daemonDownHint(installed: boolean): string {
  return installed
    ? "restart it with: sudo banger system restart"
    : "install banger's services with: sudo banger system install (from a checkout: sudo node scripts/quickstart.mjs)";
}
