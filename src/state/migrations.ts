/**
 * Versioned schema migrations. Append only: a shipped migration is never
 * edited, a change is a new entry. `user_version` records how far a database
 * got, and they only ever run forward: there are no down-migrations, so a
 * banger older than its database refuses it (see openDatabase) instead of
 * misreading it. `schema_history` (from 5 on) names the banger version that
 * brought the database to each schema, so that refusal can say which one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: images, vms, operations, network leases.
  `
  CREATE TABLE images (
    name         TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    kernel_path  TEXT NOT NULL,
    vmlinux_path TEXT,
    initrd_path  TEXT,
    rootfs_path  TEXT NOT NULL,
    kernel_version TEXT,
    size_bytes   INTEGER NOT NULL,
    created_at   TEXT NOT NULL
  );
  CREATE TABLE vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image       TEXT NOT NULL REFERENCES images(name) ON DELETE RESTRICT,
    vcpus       INTEGER NOT NULL,
    memory_mib  INTEGER NOT NULL,
    disk_gib    INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('creating','stopped','starting','running','stopping','error')),
    vmm         TEXT NOT NULL,
    handles     TEXT NOT NULL DEFAULT '{}',
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT
  );
  CREATE TABLE leases (
    vm_id  TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
    ip     TEXT NOT NULL UNIQUE,
    mac    TEXT NOT NULL UNIQUE,
    tap    TEXT NOT NULL UNIQUE,
    cid    INTEGER NOT NULL UNIQUE
  );
  CREATE TABLE operations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    target      TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running','succeeded','failed')),
    steps       TEXT NOT NULL DEFAULT '[]',
    result      TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  `,
  // 2: image flavor (which guest files VM create injects; see the guest contract).
  `
  ALTER TABLE images ADD COLUMN flavor TEXT NOT NULL DEFAULT 'systemd' CHECK (flavor IN ('systemd','busybox'));
  `,
  // 3: a change counter per operation, so `operation.wait` can tell a client what it has not seen yet.
  `
  ALTER TABLE operations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
  `,
  // 4: state 'paused' (vm pause). SQLite cannot change a CHECK in place: the table is rebuilt, with
  // foreign keys off (database.ts migrates before turning them on), so leases keep their rows and
  // point at the new table by name.
  `
  CREATE TABLE vms_v4 (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image       TEXT NOT NULL REFERENCES images(name) ON DELETE RESTRICT,
    vcpus       INTEGER NOT NULL,
    memory_mib  INTEGER NOT NULL,
    disk_gib    INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('creating','stopped','starting','running','paused','stopping','error')),
    vmm         TEXT NOT NULL,
    handles     TEXT NOT NULL DEFAULT '{}',
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT
  );
  INSERT INTO vms_v4 (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, handles, last_error, created_at, updated_at, started_at)
    SELECT id, name, image, vcpus, memory_mib, disk_gib, state, vmm, handles, last_error, created_at, updated_at, started_at FROM vms;
  DROP TABLE vms;
  ALTER TABLE vms_v4 RENAME TO vms;
  `,
  // 5: which banger version migrated the database to each schema (written by migrate()).
  `
  CREATE TABLE schema_history (
    version        INTEGER PRIMARY KEY,
    banger_version TEXT NOT NULL,
    applied_at     TEXT NOT NULL
  );
  `,
  // 6: snapshots (vm snapshot, vm fork, warm templates). No foreign key to vms or images: a snapshot
  // holds copies of everything it needs, so deleting its VM or rebuilding its image never breaks it.
  `
  CREATE TABLE snapshots (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('user','fork','template')),
    source_vm_id    TEXT NOT NULL,
    source_vm_name  TEXT NOT NULL,
    image           TEXT NOT NULL,
    image_created_at TEXT NOT NULL,
    flavor          TEXT NOT NULL CHECK (flavor IN ('systemd','busybox')),
    vcpus           INTEGER NOT NULL,
    memory_mib      INTEGER NOT NULL,
    disk_gib        INTEGER NOT NULL,
    vmm             TEXT NOT NULL,
    vmm_version     TEXT NOT NULL,
    host_key_pub    TEXT NOT NULL,
    state_bytes     INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('saving','ready')),
    created_at      TEXT NOT NULL
  );
  `,
  // 7: published ports per VM
  // (state/ports.ts). A host address:port/proto is one VM's; the rows go with the VM.
  `
  CREATE TABLE vm_ports (
    vm_id       TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    host_ip     TEXT NOT NULL,
    host_port   INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    guest_port  INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
    proto       TEXT NOT NULL CHECK (proto IN ('tcp','udp')),
    PRIMARY KEY (host_ip, host_port, proto)
  );
  CREATE INDEX vm_ports_by_vm ON vm_ports(vm_id);
  `,
  // 8: egress policy per VM (state/egress.ts), as `vm egress set` writes it; a VM without a row
  // (made before this migration) is `all`, not isolated.
  `
  CREATE TABLE vm_egress (
    vm_id    TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
    policy   TEXT NOT NULL,
    isolate  INTEGER NOT NULL CHECK (isolate IN (0, 1))
  );
  `,
  // 9: what an OCI image's config says its commands run as, with and in (vm exec / vm ssh defaults).
  `
  ALTER TABLE images ADD COLUMN exec_user TEXT;
  ALTER TABLE images ADD COLUMN exec_env TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE images ADD COLUMN exec_workdir TEXT;
  `,
];
