/** True when `s` has a C0 control character or DEL: newlines and NULs smuggle extra lines or arguments into tool input. */
export function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Text a guest wrote (its console), made safe to print on the user's
 * terminal: escape sequences (CSI, OSC and other ESC forms) and every other
 * C0/C1 control character except tab are removed, so a guest cannot move
 * the cursor, retitle the window or write to the clipboard through an error
 * message. Newlines are the caller's to split on before.
 */
export function stripTerminalControls(s: string): string {
  /* eslint-disable no-control-regex -- matching control characters is what this function is for */
  return s
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, "")
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]?/g, "")
    .replace(/\x1b[@-_]?/g, "")
    .replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, "");
  /* eslint-enable no-control-regex */
}
