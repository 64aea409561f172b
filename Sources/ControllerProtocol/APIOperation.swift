/// One operation of the controller's HTTP API. ``all`` is the single list the server registers, the clients
/// call and the OpenAPI document (`/openapi.json`) is generated from.
public struct APIOperation: Sendable, Hashable {
    /// Who may call it.
    public enum Access: String, Sendable, Hashable {
        /// Anyone (health, metrics, the result key, the API description, onboarding's first step).
        case open
        /// A device, by its TPM device key's signature (``DeviceRequestSignature``).
        case device
        /// A security-team token with at least this role.
        case viewer, `operator`, policyAdmin, admin
    }

    /// A stable id (`attest`, `policyAdd`, …).
    public let id: String
    /// `GET`, `POST` or `PUT`.
    public let method: String
    /// The path, with `{name}` parameters.
    public let path: String
    /// Who may call it.
    public let access: Access
    /// What it does.
    public let summary: String
    /// The request body's type, if it has one.
    public let requestBody: String?
    /// The 200 response's type.
    public let response: String

    /// The path in Hummingbird's syntax (`:name` for `{name}`).
    public var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
    }

    /// Every operation.
    public static let all: [APIOperation] = [
        .init(
            id: "health", method: "GET", path: "/healthz", access: .open, summary: "Liveness.", requestBody: nil,
            response: "Health"),
        .init(
            id: "metrics", method: "GET", path: "/metrics", access: .open,
            summary: "Prometheus metrics (text exposition format).", requestBody: nil, response: "text"),
        .init(
            id: "openapi", method: "GET", path: "/openapi.json", access: .open, summary: "This description.",
            requestBody: nil, response: "OpenAPI"),
        .init(
            id: "resultKey", method: "GET", path: "/v1/result-key", access: .open,
            summary: "The ES256 key that signs attestation results (PEM).", requestBody: nil, response: "pem"),
        .init(
            id: "revocations", method: "GET", path: "/v1/revocations", access: .open,
            summary: "The revoked devices, signed with the result key (a short-lived ES256 JWT): RevocationList.",
            requestBody: nil, response: "jwt"),
        .init(
            id: "onboardBegin", method: "POST", path: "/v1/onboard/begin", access: .open,
            summary: "Begin onboarding: EK, AK and device key in; credential challenge out.",
            requestBody: "OnboardBeginRequest", response: "OnboardChallenge"),
        .init(
            id: "onboardFinish", method: "POST", path: "/v1/onboard/finish", access: .device,
            summary: "Finish onboarding: activated secret and the AK's certification of the device key.",
            requestBody: "OnboardFinishRequest", response: "OnboardResult"),
        .init(
            id: "attestNonce", method: "POST", path: "/v1/attest/nonce", access: .device,
            summary: "A single-use nonce and the PCRs to quote.", requestBody: nil, response: "NonceGrant"),
        .init(
            id: "attest", method: "POST", path: "/v1/attest", access: .device,
            summary: "Evidence in; verdict and signed attestation result out.", requestBody: "EvidenceBundle",
            response: "AttestationOutcome"),
        .init(
            id: "secretRelease", method: "POST", path: "/v1/secrets/{name}", access: .device,
            summary: "Release a secret wrapped to the device's TPM (needs a fresh pass).", requestBody: nil,
            response: "SecretEnvelope"),
        .init(
            id: "escrowDeposit", method: "POST", path: "/v1/escrow/{name}", access: .device,
            summary:
                "Deposit a vault escrow (named escrow.*; needs a fresh pass); released only through secretRelease.",
            requestBody: "EscrowDeposit", response: "EscrowReceipt"),
        .init(
            id: "nodeReport", method: "POST", path: "/v1/node/report", access: .device,
            summary:
                "A node agent reports its gate and plugins (shown on the device record); answers whether the controller's latest verdict for it is an unexpired pass. A revoked device is refused.",
            requestBody: "NodeState", response: "NodeDirective"),
        .init(
            id: "ekCAPut", method: "PUT", path: "/v1/admin/ek-ca/{name}", access: .policyAdmin,
            summary: "Store a named EK CA bundle.", requestBody: "EKCABundleUpload", response: "Count"),
        .init(
            id: "policyAdd", method: "POST", path: "/v1/admin/policies/{name}", access: .policyAdmin,
            summary: "Lint and store a new policy version.", requestBody: "PolicyUpload", response: "PolicyVersion"),
        .init(
            id: "policyAssign", method: "POST", path: "/v1/admin/policies/{name}/assign", access: .policyAdmin,
            summary: "Pin a policy version to a device or group.", requestBody: "PolicyAssignment",
            response: "PolicyVersion"),
        .init(
            id: "policyList", method: "GET", path: "/v1/admin/policies", access: .viewer,
            summary: "Every policy version and its assignments.", requestBody: nil, response: "PolicyVersionList"),
        .init(
            id: "deviceAllow", method: "POST", path: "/v1/admin/devices/allow", access: .operator,
            summary: "Admit a TPM by its EK fingerprint.", requestBody: "AllowEK", response: "Empty"),
        .init(
            id: "deviceDisallow", method: "POST", path: "/v1/admin/devices/disallow", access: .operator,
            summary: "Withdraw an EK fingerprint's admission (devices already onboarded stay; revoke those).",
            requestBody: "AllowEK", response: "Empty"),
        .init(
            id: "enrollTokenRevoke", method: "POST", path: "/v1/admin/enroll-tokens/revoke", access: .operator,
            summary: "Cancel an unused enrollment token.", requestBody: "EnrollTokenRevoke", response: "Empty"),
        .init(
            id: "enrollTokenCreate", method: "POST", path: "/v1/admin/enroll-tokens", access: .operator,
            summary: "A one-time, expiring enrollment token.", requestBody: "EnrollTokenRequest",
            response: "IssuedToken"),
        .init(
            id: "deviceList", method: "GET", path: "/v1/admin/devices", access: .viewer,
            summary: "Devices with their latest verdict.", requestBody: nil, response: "DeviceSummaryList"),
        .init(
            id: "deviceShow", method: "GET", path: "/v1/admin/devices/{id}", access: .viewer,
            summary: "A device's verdict history.", requestBody: nil, response: "DeviceDetail"),
        .init(
            id: "evePreregister", method: "POST", path: "/v1/admin/eve/preregistrations", access: .operator,
            summary: "Allow EVE devices with this onboarding certificate and/or serial to register through EVE's API.",
            requestBody: "EVEPreregistration", response: "Empty"),
        .init(
            id: "eveUnregister", method: "POST", path: "/v1/admin/eve/devices/{uuid}/unregister", access: .operator,
            summary:
                "Delete an EVE device's registration (its verdict history stays), freeing its onboarding certificate and serial.",
            requestBody: nil, response: "Empty"),
        .init(
            id: "deviceRevoke", method: "POST", path: "/v1/admin/devices/{id}/revoke", access: .operator,
            summary: "Revoke a device.", requestBody: nil, response: "Empty"),
        .init(
            id: "secretPut", method: "PUT", path: "/v1/admin/secrets/{name}", access: .operator,
            summary: "A new version of a device's secret.", requestBody: "SecretUpload", response: "Count"),
        .init(
            id: "auditVerify", method: "GET", path: "/v1/admin/audit/verify", access: .viewer,
            summary: "Recompute the audit chain; name the first broken link.", requestBody: nil, response: "AuditReport"
        ),
        .init(
            id: "tokenCreate", method: "POST", path: "/v1/admin/tokens", access: .admin,
            summary: "An API token with a role.", requestBody: "TokenRequest", response: "IssuedToken"),
    ]

    /// The operation with `id`.
    public static func named(_ id: String) -> APIOperation? { all.first { $0.id == id } }
}
