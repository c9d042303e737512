/** A VM name is one DNS label (it becomes NAME.vm): 1-63 of a-z 0-9 -, not starting or ending with -. */
export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
