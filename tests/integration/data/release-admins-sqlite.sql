-- The SQLite database of the release before the admins table (commit
-- d02cc88, schema version 2), where console admins and their tokens were
-- rows of settings. Made with that release's canopyd:
--   canopyd init
--   canopyd admin-add alice --role administrator --expires 0
--   canopyd admin-add bob --role auditor --expires 3650
-- then "sqlite3 canopy.db .dump", and the PRAGMA user_version that .dump
-- leaves out. The tokens it printed (of this throwaway database only):
-- token alice: cnp_b41c2c8cec800474_677ad43e6170fc35f6db0a3add7ef26cfb692516b6da09df93defb489568d795
-- token bob: cnp_b181a0bfc22888a5_e822d9a10f4f1fe90fa29e8c171e6233daed151dcc486c10bbf2745b61cb4db0
PRAGMA user_version = 2;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,  applied_at TEXT NOT NULL);
INSERT INTO schema_migrations VALUES(2,'2026-12-05T08:50:38.990Z');
CREATE TABLE devices (device_id TEXT PRIMARY KEY CHECK (length(device_id) = 36 AND device_id NOT GLOB '*[^0-9a-f-]*'),  name TEXT NOT NULL, agent_version TEXT NOT NULL, office TEXT NOT NULL,  first_seen TEXT, last_seen TEXT, online_usec INTEGER NOT NULL,  bytes_served INTEGER NOT NULL, peers_served INTEGER NOT NULL,  chunks_rejected INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE device_groups (device_id TEXT NOT NULL    REFERENCES devices (device_id) ON DELETE CASCADE,  position INTEGER NOT NULL, group_name TEXT NOT NULL,  PRIMARY KEY (device_id, position)) WITHOUT ROWID;
CREATE TABLE device_addresses (device_id TEXT NOT NULL    REFERENCES devices (device_id) ON DELETE CASCADE,  position INTEGER NOT NULL, address TEXT NOT NULL,  prefix_length INTEGER NOT NULL CHECK (prefix_length BETWEEN 0 AND 128),  PRIMARY KEY (device_id, position)) WITHOUT ROWID;
CREATE TABLE offices (office_name TEXT PRIMARY KEY, parent TEXT NOT NULL,  office_type INTEGER NOT NULL, wan_rate_bps INTEGER NOT NULL,  metered INTEGER NOT NULL CHECK (metered IN (0, 1)),  automatic INTEGER NOT NULL CHECK (automatic IN (0, 1))) WITHOUT ROWID;
CREATE TABLE office_subnets (office_name TEXT NOT NULL    REFERENCES offices (office_name) ON DELETE CASCADE,  position INTEGER NOT NULL, subnet TEXT NOT NULL,  PRIMARY KEY (office_name, position)) WITHOUT ROWID;
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO settings VALUES('admin-token/b181a0bfc22888a5','(''bob'', ''d2f6fa0a67198914042bc26b8ff45d936240295da52445369577c6dd190d5c90'', 1796460639, 2111820639)');
INSERT INTO settings VALUES('admin-token/b41c2c8cec800474','(''alice'', ''45f5c2141dbb8a2a4b85e0c999ed790fbbe661c6e9b15fabace7d0fef6e73432'', 1796460639, 0)');
INSERT INTO settings VALUES('admin/alice','(''administrator'', 1796460639)');
INSERT INTO settings VALUES('admin/bob','(''auditor'', 1796460639)');
CREATE TABLE contents (content_id TEXT PRIMARY KEY CHECK (length(content_id) = 36 AND content_id NOT GLOB '*[^0-9a-f-]*'),  name TEXT NOT NULL, version TEXT NOT NULL, origin TEXT NOT NULL,  manifest BLOB NOT NULL, registered_at TEXT, expires_at TEXT) WITHOUT ROWID;
CREATE TABLE deployments (deployment_id TEXT PRIMARY KEY CHECK (length(deployment_id) = 36 AND deployment_id NOT GLOB '*[^0-9a-f-]*'),  content_id TEXT NOT NULL CHECK (length(content_id) = 36 AND content_id NOT GLOB '*[^0-9a-f-]*'),  destination TEXT NOT NULL, state INTEGER NOT NULL, created_at TEXT,  start_at TEXT, deadline TEXT,  window_start_min INTEGER NOT NULL CHECK (window_start_min BETWEEN 0 AND 1440),  window_end_min INTEGER NOT NULL CHECK (window_end_min BETWEEN 0 AND 1440),  background INTEGER NOT NULL CHECK (background IN (0, 1))) WITHOUT ROWID;
CREATE TABLE deployment_groups (deployment_id TEXT NOT NULL    REFERENCES deployments (deployment_id) ON DELETE CASCADE,  position INTEGER NOT NULL, group_name TEXT NOT NULL,  PRIMARY KEY (deployment_id, position)) WITHOUT ROWID;
CREATE TABLE assignments (deployment_id TEXT NOT NULL CHECK (length(deployment_id) = 36 AND deployment_id NOT GLOB '*[^0-9a-f-]*'),  device_id TEXT NOT NULL CHECK (length(device_id) = 36 AND device_id NOT GLOB '*[^0-9a-f-]*'),  chunks_verified INTEGER NOT NULL, done INTEGER NOT NULL CHECK (done IN (0, 1)),  PRIMARY KEY (deployment_id, device_id)) WITHOUT ROWID;
CREATE TABLE assignment_bytes (deployment_id TEXT NOT NULL, device_id TEXT NOT NULL,  source TEXT NOT NULL, bytes INTEGER NOT NULL,  PRIMARY KEY (deployment_id, device_id, source),  FOREIGN KEY (deployment_id, device_id)    REFERENCES assignments (deployment_id, device_id) ON DELETE CASCADE) WITHOUT ROWID;
CREATE TABLE licences (device_id TEXT PRIMARY KEY CHECK (length(device_id) = 36 AND device_id NOT GLOB '*[^0-9a-f-]*'),  activated_at TEXT, last_seen TEXT, released_at TEXT) WITHOUT ROWID;
CREATE TABLE transfers (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT,  content_id TEXT NOT NULL, from_device TEXT NOT NULL, to_device TEXT NOT NULL,  source INTEGER NOT NULL, chunks INTEGER NOT NULL, bytes INTEGER NOT NULL,  verified INTEGER NOT NULL CHECK (verified IN (0, 1)));
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT,  actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO audit VALUES(1,'2026-12-05T08:50:39.035014Z','canopyd command run by root','admin-added','alice token b41c2c8cec800474');
INSERT INTO audit VALUES(2,'2026-12-05T08:50:39.057229Z','canopyd command run by root','admin-added','bob token b181a0bfc22888a5');
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('audit',2);
CREATE INDEX devices_by_office ON devices (office);
CREATE INDEX devices_by_last_seen ON devices (last_seen);
CREATE INDEX device_groups_by_group ON device_groups (group_name);
CREATE INDEX device_addresses_by_address ON device_addresses (address);
CREATE INDEX deployments_by_content ON deployments (content_id);
CREATE INDEX assignments_by_device ON assignments (device_id);
CREATE INDEX transfers_by_content ON transfers (content_id, id);
CREATE INDEX audit_by_at ON audit (at);
COMMIT;
