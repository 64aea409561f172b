public import Foundation

/// The security team's API (`vigil admin …`), under `/v1/admin`, authorized by `Authorization: Bearer TOKEN`.
public enum Admin {
    /// What a token may do. Each role includes the ones before it.
    public enum Role: String, Codable, Sendable, Hashable, CaseIterable, Comparable {
        /// Read devices, verdicts, policies and the audit log.
        case viewer
        /// Also admit devices (allow an EK, enrollment tokens), revoke them, and put secrets.
        case `operator`
        /// Also add and assign policies and EK CA bundles.
        case policyAdmin = "policy-admin"
        /// Also create tokens (the bootstrap token has this role).
        case admin

        /// Orders by the text form.
        public static func < (a: Self, b: Self) -> Bool {
            allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
        }
    }

    /// `POST /v1/admin/ek-ca/{name}`: the CA certificates of a vendor (PEM or DER base64, one per entry).
    public struct EKCABundleUpload: Codable, Sendable, Hashable {
        /// The certificates; self-issued ones are the roots.
        public var certificates: [String]
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["certificates"]
        /// An upload.
        public init(certificates: [String]) { self.certificates = certificates }
    }

    /// `POST /v1/admin/policies/{name}`: a policy document (YAML), linted before it is stored as a new version.
    public struct PolicyUpload: Codable, Sendable, Hashable {
        /// The document.
        public var yaml: String
        /// The documents it extends (`extends:` resolves among these only), stored with it: a version never
        /// changes when another policy does.
        public var parents: [String]?
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["yaml", "parents"]
        /// An upload.
        public init(yaml: String, parents: [String]? = nil) {
            self.yaml = yaml
            self.parents = parents
        }
    }

    /// A stored policy version.
    public struct PolicyVersion: Codable, Sendable, Hashable {
        /// The policy's name.
        public var name: String
        /// Its version at the controller (1, 2, …; never overwritten).
        public var version: Int
        /// SHA-256 of the document, hex.
        public var sha256: String
        /// When it was added.
        public var createdAt: Date
        /// Groups and devices it is assigned to.
        public var assignedTo: [String]
        /// A version.
        public init(name: String, version: Int, sha256: String, createdAt: Date, assignedTo: [String]) {
            self.name = name
            self.version = version
            self.sha256 = sha256
            self.createdAt = createdAt
            self.assignedTo = assignedTo
        }
    }

    /// `POST /v1/admin/policies/{name}/assign`: to one device or one group (exactly one of them), pinning the
    /// policy's latest version, or `version` when given.
    public struct PolicyAssignment: Codable, Sendable, Hashable {
        /// The device.
        public var device: DeviceID?
        /// The group.
        public var group: String?
        /// The version to pin (default: the latest).
        public var version: Int?
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["device", "group", "version"]
        /// An assignment.
        public init(device: DeviceID?, group: String?, version: Int?) {
            self.device = device
            self.group = group
            self.version = version
        }
    }

    /// `POST /v1/admin/devices/allow`: admit the TPM with this EK (before it ever connects).
    public struct AllowEK: Codable, Sendable, Hashable {
        /// The EK's fingerprint.
        public var ekFingerprint: EKFingerprint
        /// The group it joins (default `default`).
        public var group: String?
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["ek_fingerprint", "group"]
        /// A request.
        public init(ekFingerprint: EKFingerprint, group: String?) {
            self.ekFingerprint = ekFingerprint
            self.group = group
        }
    }

    /// `POST /v1/admin/eve/preregistrations` (`vigil admin eve preregister`): lets EVE devices register through
    /// `/api/v2/edgedevice/register` with this onboarding certificate, this serial, or both (APIv2.md "Register":
    /// the controller requires pre-registration; a device without one is answered 403).
    public struct EVEPreregistration: Codable, Sendable, Hashable {
        /// The onboarding certificate, PEM (any serial may register with it unless `serial` is also given).
        public var onboardingCertificate: String?
        /// The hardware serial (any onboarding certificate may register it unless one is also given).
        public var serial: String?
        /// The group the registered devices join (default `default`): its policy judges them.
        public var group: String?
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["onboarding_certificate", "serial", "group"]
        /// A request.
        public init(onboardingCertificate: String?, serial: String?, group: String?) {
            self.onboardingCertificate = onboardingCertificate
            self.serial = serial
            self.group = group
        }
    }

    /// An EVE device's registration, as `device show` shows it.
    public struct EVEIdentity: Codable, Sendable, Hashable {
        /// The UUID the controller assigned at registration (what the device puts in its request paths).
        public var uuid: String
        /// The hardware serial it registered with.
        public var serial: String
        /// Its device certificate's subject.
        public var deviceCertificateSubject: String
        /// SHA-256 of its device certificate's DER, hex (its `senderCertHash`).
        public var deviceCertificateSHA256: String
        /// The certificates it uploaded (`ATTEST_REQ_CERT`): type → subject.
        public var certificates: [String: String]
        /// A registration.
        public init(
            uuid: String, serial: String, deviceCertificateSubject: String, deviceCertificateSHA256: String,
            certificates: [String: String]
        ) {
            self.uuid = uuid
            self.serial = serial
            self.deviceCertificateSubject = deviceCertificateSubject
            self.deviceCertificateSHA256 = deviceCertificateSHA256
            self.certificates = certificates
        }

        enum CodingKeys: String, CodingKey {
            // APIJSON writes snake_case: device_certificate_sha256.
            case uuid, serial, deviceCertificateSubject, deviceCertificateSHA256 = "deviceCertificateSha256",
                certificates
        }
    }

    /// `POST /v1/admin/enroll-tokens`.
    public struct EnrollTokenRequest: Codable, Sendable, Hashable {
        /// The group the device joins.
        public var group: String?
        /// Lifetime in seconds (60 s to 30 days).
        public var expiresInSeconds: Int
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["group", "expires_in_seconds"]
        /// A request.
        public init(group: String?, expiresInSeconds: Int) {
            self.group = group
            self.expiresInSeconds = expiresInSeconds
        }
    }

    /// `POST /v1/admin/enroll-tokens/revoke`: cancels an unused enrollment token.
    public struct EnrollTokenRevoke: Codable, Sendable, Hashable {
        /// The token, as `enroll-token create` printed it.
        public var token: String
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["token"]
        /// A request.
        public init(token: String) { self.token = token }
    }

    /// A new token (enrollment or API): shown once, stored only as its hash.
    public struct IssuedToken: Codable, Sendable, Hashable {
        /// The token.
        public var token: String
        /// When it expires (enrollment tokens).
        public var expiresAt: Date?
        /// Its role (API tokens).
        public var role: Role?
        /// A token.
        public init(token: String, expiresAt: Date?, role: Role?) {
            self.token = token
            self.expiresAt = expiresAt
            self.role = role
        }
    }

    /// `POST /v1/admin/tokens`.
    public struct TokenRequest: Codable, Sendable, Hashable {
        /// The role of the new token.
        public var role: Role
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["role"]
        /// A request.
        public init(role: Role) { self.role = role }
    }

    /// `PUT /v1/admin/secrets/{name}`: a new version of a secret for one device.
    public struct SecretUpload: Codable, Sendable, Hashable {
        /// The device it is for.
        public var device: DeviceID
        /// The secret, base64 (at most ``SecretEnvelope/maximumSecretSize`` bytes).
        public var value: String
        /// The fields a request may carry.
        public static let knownKeys: Set<String> = ["device", "value"]
        /// An upload.
        public init(device: DeviceID, value: String) {
            self.device = device
            self.value = value
        }
    }

    /// One rule that failed, as the verdict names it.
    public struct RuleFailure: Codable, Sendable, Hashable {
        /// The rule id (`pcr.values`, `boot.secure_boot`, …).
        public var rule: String
        /// The bank, when the rule is about one.
        public var bank: String?
        /// The PCR, when the rule is about one.
        public var pcr: Int?
        /// The event's index in the log, when the rule is about one.
        public var event: Int?
        /// What the policy expects.
        public var expected: String
        /// What the evidence showed.
        public var actual: String
        /// A failure.
        public init(rule: String, bank: String?, pcr: Int?, event: Int?, expected: String, actual: String) {
            self.rule = rule
            self.bank = bank
            self.pcr = pcr
            self.event = event
            self.expected = expected
            self.actual = actual
        }
    }

    /// One attestation in a device's history.
    public struct AttestationRecord: Codable, Sendable, Hashable {
        /// When the controller decided.
        public var at: Date
        /// Whether it passed.
        public var pass: Bool
        /// The policy and version that judged it (`name@version`), when evidence was verified.
        public var policy: String?
        /// The failed rules.
        public var failures: [RuleFailure]
        /// Why the evidence was refused before any rule ran (signature, nonce, …), when it was.
        public var refusal: String?
        /// SHA-256 of the evidence bundle, hex.
        public var evidenceSHA256: String?
        /// A record.
        public init(
            at: Date, pass: Bool, policy: String?, failures: [RuleFailure], refusal: String?, evidenceSHA256: String?
        ) {
            self.at = at
            self.pass = pass
            self.policy = policy
            self.failures = failures
            self.refusal = refusal
            self.evidenceSHA256 = evidenceSHA256
        }

        enum CodingKeys: String, CodingKey {
            case at, pass, policy, failures, refusal, evidenceSHA256 = "evidenceSha256"
        }
    }

    /// A device as `device list` shows it.
    public struct DeviceSummary: Codable, Sendable, Hashable {
        /// The device.
        public var deviceID: DeviceID
        /// Its group.
        public var group: String
        /// `active` or `revoked`.
        public var status: String
        /// The policy assigned to it (directly or through its group), `name@version`.
        public var policy: String?
        /// Its latest attestation.
        public var last: AttestationRecord?
        /// A summary.
        public init(deviceID: DeviceID, group: String, status: String, policy: String?, last: AttestationRecord?) {
            self.deviceID = deviceID
            self.group = group
            self.status = status
            self.policy = policy
            self.last = last
        }

        enum CodingKeys: String, CodingKey {
            case deviceID = "deviceId", group, status, policy, last
        }
    }

    /// A device as `device show` shows it.
    public struct DeviceDetail: Codable, Sendable, Hashable {
        /// The summary.
        public var summary: DeviceSummary
        /// The EK's fingerprint (nil for an EVE device: EVE's API binds no EK to its AK).
        public var ekFingerprint: EKFingerprint?
        /// The bound AK's Name, hex (nil for an EVE device).
        public var akName: String?
        /// How the controller knows the AK is this device's: `credential-activation` (Vigil's onboarding: the AK is
        /// proven to live in the EK's TPM) or `eve-device-certificate` (EVE's API: the device certificate vouches for
        /// the AK; no credential activation, so AK–EK co-residence is not proven).
        public var identityProof: String
        /// The EVE registration, for a device that attests through EVE's API.
        public var eve: EVEIdentity?
        /// When it was onboarded.
        public var onboardedAt: Date
        /// Attestations, newest first.
        public var history: [AttestationRecord]
        /// What the device's node agent last reported about itself (its own account, not a verdict).
        public var node: NodeReport.State?
        /// When it reported it.
        public var nodeReportedAt: Date?
        /// A detail view.
        public init(
            summary: DeviceSummary, ekFingerprint: EKFingerprint?, akName: String?, onboardedAt: Date,
            history: [AttestationRecord], node: NodeReport.State? = nil, nodeReportedAt: Date? = nil,
            identityProof: String = "credential-activation", eve: EVEIdentity? = nil
        ) {
            self.summary = summary
            self.ekFingerprint = ekFingerprint
            self.akName = akName
            self.identityProof = identityProof
            self.eve = eve
            self.onboardedAt = onboardedAt
            self.history = history
            self.node = node
            self.nodeReportedAt = nodeReportedAt
        }
    }

    /// `GET /v1/admin/audit/verify`.
    public struct AuditReport: Codable, Sendable, Hashable {
        /// Entries checked.
        public var entries: Int
        /// Whether every link holds.
        public var intact: Bool
        /// The sequence number of the first entry whose link or digest is wrong.
        public var firstBroken: Int?
        /// What is wrong there.
        public var reason: String?
        /// A report.
        public init(entries: Int, intact: Bool, firstBroken: Int?, reason: String?) {
            self.entries = entries
            self.intact = intact
            self.firstBroken = firstBroken
            self.reason = reason
        }
    }
}
