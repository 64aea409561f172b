/// The controller's schema: one definition for SQLite and PostgreSQL (TEXT and BIGINT only), applied by
/// numbered migrations, each in its own transaction with the version it brings the database to.
enum Schema {
    /// Migrations in order; migration `i` brings the database to version `i + 1`. Never edit a released one:
    /// add another.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE devices (
                device_id TEXT PRIMARY KEY,
                ek_fingerprint TEXT NOT NULL UNIQUE,
                ek_public TEXT NOT NULL,
                ek_certificate TEXT,
                ak_public TEXT NOT NULL,
                ak_name TEXT NOT NULL,
                device_public TEXT NOT NULL,
                group_name TEXT NOT NULL,
                status TEXT NOT NULL,
                ek_chain TEXT NOT NULL,
                onboarded_at BIGINT NOT NULL,
                activated_at BIGINT NOT NULL,
                previous_quote TEXT,
                last_attestation TEXT,
                last_seen BIGINT
            )
            """,
            """
            CREATE TABLE allowed_eks (
                ek_fingerprint TEXT PRIMARY KEY,
                group_name TEXT NOT NULL,
                added_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE enroll_tokens (
                token_sha256 TEXT PRIMARY KEY,
                group_name TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT,
                used_by TEXT
            )
            """,
            """
            CREATE TABLE onboard_challenges (
                challenge_id TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                request TEXT NOT NULL,
                activation_secret TEXT NOT NULL,
                certify_nonce TEXT NOT NULL,
                group_name TEXT NOT NULL,
                token_sha256 TEXT,
                ek_chain TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
            """
            CREATE TABLE nonces (
                nonce TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                selection TEXT NOT NULL,
                issued_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
            """
            CREATE TABLE request_ids (
                device_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (device_id, request_id)
            )
            """,
            "CREATE TABLE ek_ca_bundles (name TEXT PRIMARY KEY, certificates TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            """
            CREATE TABLE policies (
                name TEXT NOT NULL,
                version BIGINT NOT NULL,
                yaml TEXT NOT NULL,
                parents TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
            """
            CREATE TABLE assignments (
                target TEXT PRIMARY KEY,
                policy_name TEXT NOT NULL,
                policy_version BIGINT NOT NULL,
                assigned_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE attestations (
                id TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                at BIGINT NOT NULL,
                pass BIGINT NOT NULL,
                policy TEXT,
                verdict TEXT,
                refusal TEXT,
                evidence_sha256 TEXT,
                result_token TEXT,
                expires_at BIGINT
            )
            """,
            "CREATE INDEX attestations_by_device ON attestations (device_id, at)",
            """
            CREATE TABLE secrets (
                name TEXT NOT NULL,
                device_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                sealed TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (name, device_id, version)
            )
            """,
            """
            CREATE TABLE api_tokens (
                token_sha256 TEXT PRIMARY KEY,
                role TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE audit (
                seq BIGINT PRIMARY KEY,
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                subject TEXT NOT NULL,
                outcome TEXT NOT NULL,
                detail TEXT NOT NULL,
                prev_digest TEXT NOT NULL,
                digest TEXT NOT NULL
            )
            """,
        ],
        // 2: escrows are released once per passing attestation (the attestation is spent).
        [
            """
            CREATE TABLE escrow_releases (
                attestation_id TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                name TEXT NOT NULL,
                at BIGINT NOT NULL
            )
            """
        ],
        // 3: what the device's node agent last reported (its gate, plugins), shown on the device record.
        [
            "ALTER TABLE devices ADD COLUMN node_state TEXT",
            "ALTER TABLE devices ADD COLUMN node_state_at BIGINT",
        ],
        // 4: EVE devices attesting through EVE's own API (`/api/v2/edgedevice/…`). Their verdicts, nonces and audit
        // entries go to the same tables as every other device's, under their Vigil device id.
        [
            """
            CREATE TABLE eve_preregistrations (
                id TEXT PRIMARY KEY,
                onboarding_sha256 TEXT,
                serial TEXT,
                group_name TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE eve_devices (
                uuid TEXT PRIMARY KEY,
                device_id TEXT NOT NULL UNIQUE,
                device_cert_sha256 TEXT NOT NULL UNIQUE,
                device_cert_sha256_16 TEXT NOT NULL,
                device_cert TEXT NOT NULL,
                onboarding_sha256 TEXT NOT NULL,
                serial TEXT NOT NULL,
                soft_serial TEXT NOT NULL,
                group_name TEXT NOT NULL,
                status TEXT NOT NULL,
                registered_at BIGINT NOT NULL,
                certs TEXT,
                ak_name TEXT,
                previous_quote TEXT,
                integrity_token_sha256 TEXT,
                keys_token_sha256 TEXT,
                storage_keys TEXT,
                last_attestation TEXT,
                last_seen BIGINT
            )
            """,
            "CREATE UNIQUE INDEX eve_devices_by_onboarding ON eve_devices (onboarding_sha256, serial)",
            "CREATE INDEX eve_devices_by_short_hash ON eve_devices (device_cert_sha256_16)",
            "CREATE UNIQUE INDEX eve_devices_by_ak ON eve_devices (ak_name)",
        ],
        // 5: when each device was revoked, for the signed revocation list (`GET /v1/revocations`). Devices revoked
        // before this version are listed as revoked at time 0.
        [
            "CREATE TABLE revocations (device_id TEXT PRIMARY KEY, revoked_at BIGINT NOT NULL)",
            "INSERT INTO revocations (device_id, revoked_at) SELECT device_id, 0 FROM devices WHERE status = 'revoked'",
            "INSERT INTO revocations (device_id, revoked_at) SELECT device_id, 0 FROM eve_devices WHERE status = 'revoked'",
        ],
        // 6: at fleet scale, every nonce and signed request also sweeps expired rows and counts the device's recent
        // nonces (its rate limit): indexes so neither scans the table.
        [
            "CREATE INDEX nonces_by_device ON nonces (device_id, issued_at)",
            "CREATE INDEX nonces_by_expiry ON nonces (expires_at)",
            "CREATE INDEX request_ids_by_expiry ON request_ids (expires_at)",
        ],
        // 7: the dashboard (issue 13): sessions by the SHA-256 of their id (the browser's cookie), with the admin
        // token they were opened with (by its hash, joined on every request) and the CSRF token their forms carry;
        // and verdicts by time, for the dashboard's live feed.
        [
            "CREATE TABLE ui_sessions (session_sha256 TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL, csrf TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
            "CREATE INDEX attestations_by_time ON attestations (at)",
        ],
        // 8: the dashboard's decoded events and PCR diff: what each attestation showed of the boot (``BootRecord``),
        // stored once per boot (by the SHA-256 of the log and the quoted PCRs) and named by the attestation.
        [
            "CREATE TABLE boot_records (sha256 TEXT PRIMARY KEY, record TEXT NOT NULL, created_at BIGINT NOT NULL)",
            "ALTER TABLE attestations ADD COLUMN boot_sha256 TEXT",
        ],
    ]

    /// Brings `backend` to the latest version; a database newer than this controller is refused.
    static func migrate(_ backend: any SQLBackend) async throws(ControllerError) {
        try await backend.transaction { tx throws(ControllerError) in
            try await backend.lockAuditChain(tx)
            try await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        }
        while true {
            let done = try await backend.transaction { tx throws(ControllerError) -> Bool in
                // Several instances starting at once: one migrates, the others wait and then find it done.
                try await backend.lockAuditChain(tx)
                let current = try await tx.first("SELECT MAX(version) AS v FROM schema_version", [])?.integer("v") ?? 0
                guard current <= Int64(migrations.count) else {
                    throw .internalFailure(
                        "database \(backend.displayName) is at schema version \(current), newer than this controller's \(migrations.count)"
                    )
                }
                guard current < Int64(migrations.count) else { return true }
                for statement in migrations[Int(current)] { try await tx.execute(statement) }
                try await tx.execute("INSERT INTO schema_version (version) VALUES (?)", [.integer(current + 1)])
                return false
            }
            if done { return }
        }
    }
}
