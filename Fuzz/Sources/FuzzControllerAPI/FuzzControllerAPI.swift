import Controller
import ControllerProtocol
import Crypto
import Foundation

/// Every body the controller's API reads, as the server reads it (``APIJSON`` with the route's size cap and
/// known keys), then the checks behind each: onboarding's key and certificate validation, the device request
/// signature header, admin uploads, the secret envelope a device opens, and the dashboard's forms and query.
/// Seeds: Fuzz/seeds/FuzzControllerAPI.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The dashboard's forms and query string.
    DashboardInput.exercise(bytes)
    if let begin = try? APIJSON.decode(
        Onboarding.BeginRequest.self, from: bytes, limit: Controller.maximumOnboardingBody,
        knownKeys: Onboarding.BeginRequest.knownKeys)
    {
        _ = try? Controller.validateOnboarding(begin)
    }
    _ = try? APIJSON.decode(
        Onboarding.FinishRequest.self, from: bytes, limit: Controller.maximumOnboardingBody,
        knownKeys: Onboarding.FinishRequest.knownKeys)
    _ = try? APIJSON.decode(
        Admin.PolicyUpload.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.PolicyUpload.knownKeys)
    _ = try? APIJSON.decode(
        Admin.PolicyAssignment.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.PolicyAssignment.knownKeys)
    _ = try? APIJSON.decode(
        Admin.AllowEK.self, from: bytes, limit: Controller.maximumAdminBody, knownKeys: Admin.AllowEK.knownKeys)
    _ = try? APIJSON.decode(
        Admin.EnrollTokenRequest.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.EnrollTokenRequest.knownKeys)
    _ = try? APIJSON.decode(
        Admin.SecretUpload.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.SecretUpload.knownKeys)
    _ = try? APIJSON.decode(
        Admin.EKCABundleUpload.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.EKCABundleUpload.knownKeys)
    _ = try? APIJSON.decode(
        Admin.TokenRequest.self, from: bytes, limit: Controller.maximumAdminBody,
        knownKeys: Admin.TokenRequest.knownKeys)
    _ = try? APIJSON.decode(
        Escrow.Deposit.self, from: bytes, limit: Controller.maximumEscrowBody, knownKeys: Escrow.Deposit.knownKeys)
    _ = try? APIJSON.decode(APIErrorBody.self, from: bytes, limit: 1 << 20)
    if let report = try? APIJSON.decode(
        NodeReport.State.self, from: bytes, limit: NodeReport.maximumBody, knownKeys: NodeReport.State.knownKeys)
    {
        _ = try? report.validate()
    }
    _ = try? APIJSON.decode(NodeReport.Directive.self, from: bytes, limit: 1 << 20)

    let text = String(decoding: bytes.prefix(1024), as: UTF8.self)
    if let signature = try? DeviceRequestSignature(headerValue: text) {
        _ = try? signature.verify(
            method: "POST", path: "/v1/attest", body: bytes, key: P256.Signing.PrivateKey().publicKey,
            now: Date(timeIntervalSince1970: Double(signature.timestamp)))
    }
    _ = DeviceID(text)
    _ = EKFingerprint(text)
    _ = PolicyName(text)

    if let envelope = try? APIJSON.decode(SecretEnvelope.self, from: bytes, limit: 1 << 20),
        let name = SecretName(envelope.name)
    {
        _ = try? envelope.open(
            key: SymmetricKey(data: [UInt8](repeating: 1, count: 32)), expectedDevice: envelope.deviceID,
            expectedName: name)
    }
    return 0
}
