/** True when `s` has a C0 control character or DEL: newlines and NULs smuggle extra lines or arguments into tool input. */
export function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
