import AsyncHTTPClient
import Attest
import AttestTPM
import Controller
import ControllerProtocol
import Crypto
import EVEAPI
import Foundation
import NIOCore
import ProcessSupport
import SwiftASN1
import SwiftProtobuf
import Testing
import VigilTestSupport
import X509
import _CryptoExtras

/// EVE devices attest against Vigil's controller through EVE's own API (lf-edge/eve-api), unchanged: the whole
/// flow on swift-protobuf's generated types, with quotes from swtpm, and every forgery refused with its reason.
@Suite(.serialized) struct EVECompatibilityTests {
    typealias Identity = EVEClient.Identity

    /// An EVE device: a private swtpm (the fixture TPM, provisioned, booted with the GCE RHEL 8 Secure Boot log),
    /// software onboarding and device identities (the test's stand-in for EVE's TPM-resident device key), a serial.
    struct Device {
        let simulator: TestDevice
        let tpm: TPM
        let onboarding: Identity
        let identity: Identity
        let serial: String
        let ak: TPMTPublic
        /// The TPM's RSA EK certificate (a blank TPM has none).
        let ek: Certificate?

        /// `tpmKey`: the device certificate and key are the TPM's own (`vigil tpm provision` made them), as on EVE.
        static func boot(_ serial: String, onboarding: Identity, fresh: Bool = false, tpmKey: Bool = false) async throws
            -> Device
        {
            let simulator = try TestDevice(fresh: fresh)
            let provision = try await simulator.vigil(["tpm", "provision"])
            guard provision.status == 0 else { throw EVETestError("provision: \(provision.stderr)") }
            let replay = try await simulator.vigil(["tpm", "replay-log", ControllerFixtures.eventLog])
            guard replay.status == 0 else { throw EVETestError("replay-log: \(replay.stderr)") }
            let tpm = try await simulator.open()
            guard let ak = try await tpm.readPublic(IdentityKeyTemplates.akHandle)?.publicArea else {
                throw EVETestError("the TPM has no AK")
            }
            let ek = try await IdentityProvisioner.readEKCertificate(tpm, .rsa2048)
            return Device(
                simulator: simulator, tpm: tpm, onboarding: onboarding,
                identity: tpmKey
                    ? try await .tpmResident(tpm)
                    : try .selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "EVE device \(serial)"),
                serial: serial, ak: ak, ek: ek?.certificate)
        }

        var id: DeviceID { DeviceID(eveDeviceKey: Array(identity.certificate.publicKey.subjectPublicKeyInfoBytes)) }

        func register(_ client: EVEClient, certificate: Identity? = nil) async throws -> EVEClient.Answer {
            var message = Org_Lfedge_Eve_Register_ZRegisterMsg()
            message.pemCert = Data((certificate ?? identity).pem.utf8)
            message.serial = serial
            return try await client.post(
                "/register", try await EVEClient.seal(message, as: onboarding, includeCertificate: true))
        }

        func attest(
            _ client: EVEClient, uuid: String, _ request: Org_Lfedge_Eve_Attest_ZAttestReq,
            form: EVEClient.SignatureForm = .raw
        ) async throws -> EVEClient.Answer {
            try await client.post("/id/\(uuid)/attest", try await EVEClient.seal(request, as: identity, form: form))
        }

        func stop() { simulator.stop() }
    }

    /// The controller's side the tests read answers with: its signing certificate and CA.
    struct Trust {
        let signing: Certificate
        let ca: Certificate

        func open<M: SwiftProtobuf.Message>(_ answer: EVEClient.Answer, as type: M.Type) throws -> M {
            guard answer.status == 200 || answer.status == 201 else {
                throw EVETestError("HTTP \(answer.status): \(answer.text)")
            }
            return try M(serializedBytes: try EVEClient.open(answer.body, signing: signing, ca: ca))
        }
    }

    /// `GET /certs`: the signing certificate, checked to chain to the CA the device was born with, and the answer
    /// itself verified with it.
    static func fetchTrust(_ client: EVEClient, _ controller: ControllerHarness) async throws -> Trust {
        let ca = try Certificate(pemEncoded: try String(contentsOfFile: controller.caPath, encoding: .utf8))
        let answer = try await client.get("/certs")
        #expect(answer.status == 200)
        let container = try Org_Lfedge_Eve_Auth_AuthContainer(serializedBytes: answer.body)
        let certs = try Org_Lfedge_Eve_Certs_ZControllerCert(serializedBytes: container.protectedPayload.payload)
        let signingZ = try #require(certs.certs.first { $0.type == .certTypeControllerSigning })
        #expect(certs.certs.contains { $0.type == .certTypeControllerIntermediate })
        let signing = try Certificate(pemEncoded: String(decoding: signingZ.cert, as: UTF8.self))
        let trust = Trust(signing: signing, ca: ca)
        _ = try EVEClient.open(answer.body, signing: signing, ca: ca)
        return trust
    }

    static func request(_ type: Org_Lfedge_Eve_Attest_ZAttestReqType) -> Org_Lfedge_Eve_Attest_ZAttestReq {
        var r = Org_Lfedge_Eve_Attest_ZAttestReq()
        r.reqType = type
        return r
    }

    /// The EK CA bundle and the EVE policy (`policies/eve-measured-boot.yaml`) assigned to group `eve`.
    static func prepareEVEFleet(_ controller: ControllerHarness) async throws {
        try await controller.prepareFleet(group: "lab")
        let admin = try await controller.admin()
        let root = SoftwareTPM.repositoryRoot
        let yaml = try String(
            contentsOf: root.appendingPathComponent("policies/eve-measured-boot.yaml"), encoding: .utf8)
        _ = try await controller.controller.addPolicy(
            admin, name: PolicyName("eve-measured-boot")!,
            Admin.PolicyUpload(yaml: yaml, parents: try ControllerFixtures.fleetParents()))
        _ = try await controller.controller.assignPolicy(
            admin, name: PolicyName("eve-measured-boot")!,
            Admin.PolicyAssignment(device: nil, group: "eve", version: nil))
    }

    static func uuid(
        _ client: EVEClient, _ trust: Trust, _ device: Device, form: EVEClient.SignatureForm = .raw,
        algo: Org_Lfedge_Eve_Common_HashAlgorithm = .sha25632Bytes
    ) async throws -> String {
        let answer = try await client.post(
            "/uuid",
            try await EVEClient.seal(Org_Lfedge_Eve_Uuid_UuidRequest(), as: device.identity, form: form, algo: algo))
        return try trust.open(answer, as: Org_Lfedge_Eve_Uuid_UuidResponse.self).uuid
    }

    static func uploadCertificates(_ client: EVEClient, _ trust: Trust, _ device: Device, uuid: String) async throws {
        var req = request(.attestReqCert)
        req.certs = [try await EVEClient.akCertificate(device.ak, by: device.identity)]
        if let ek = device.ek { req.certs.append(EVEClient.zcert(ek, .certTypeDeviceEndorsementRsa)) }
        let answer = try await device.attest(client, uuid: uuid, req)
        let response = try trust.open(answer, as: Org_Lfedge_Eve_Attest_ZAttestResponse.self)
        #expect(answer.status == 201)
        #expect(response.respType == .attestRespCert)
    }

    static func nonce(_ client: EVEClient, _ trust: Trust, _ device: Device, uuid: String) async throws -> [UInt8] {
        let response = try trust.open(
            try await device.attest(client, uuid: uuid, request(.attestReqNonce)),
            as: Org_Lfedge_Eve_Attest_ZAttestResponse.self)
        #expect(response.respType == .attestRespNonce)
        return Array(response.nonce.nonce)
    }

    static func sendQuote(
        _ client: EVEClient, _ trust: Trust, _ device: Device, uuid: String, _ quote: Org_Lfedge_Eve_Attest_ZAttestQuote
    ) async throws -> Org_Lfedge_Eve_Attest_ZAttestQuoteResp {
        var req = request(.attestReqQuote)
        req.quote = quote
        let response = try trust.open(
            try await device.attest(client, uuid: uuid, req), as: Org_Lfedge_Eve_Attest_ZAttestResponse.self)
        #expect(response.respType == .attestRespQuoteResp)
        return response.quoteResp
    }

    static func storeKeys(
        _ client: EVEClient, _ trust: Trust, _ device: Device, uuid: String, token: Data,
        keys: [Org_Lfedge_Eve_Attest_AttestVolumeKey]
    ) async throws -> Org_Lfedge_Eve_Attest_AttestStorageKeysResponseCode {
        var req = request(.storeKeys)
        req.storageKeys.integrityToken = token
        req.storageKeys.keys = keys
        let response = try trust.open(
            try await device.attest(client, uuid: uuid, req), as: Org_Lfedge_Eve_Attest_ZAttestResponse.self)
        #expect(response.respType == .storeKeys)
        return response.storageKeysResp.response
    }

    static let eventLog = { () -> [UInt8] in
        (try? Array(Data(contentsOf: URL(fileURLWithPath: ControllerFixtures.eventLog)))) ?? []
    }()

    // MARK: The whole flow

    @Test(arguments: ControllerHarness.Database.available)
    func anEVEDeviceRegistersAttestsAndGetsItsKeysBackOnlyAfterAPass(_ database: ControllerHarness.Database)
        async throws
    {
        let controller = try await ControllerHarness.start(database)
        let onboarding = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "EVE onboarding")
        // The device key is the TPM's: every request is signed by TPM2_Sign, as on an EVE device.
        let device = try await Device.boot("EVE-SERIAL-0001", onboarding: onboarding, tpmKey: true)
        let client = try EVEClient(
            url: controller.url, caPEM: try String(contentsOfFile: controller.caPath, encoding: .utf8))
        defer { device.stop() }
        do {
            try await Self.prepareEVEFleet(controller)
            // The security team pre-registers the onboarding certificate and serial with the CLI.
            let pemFile = device.simulator.path("onboarding.pem")
            try onboarding.pem.write(toFile: pemFile, atomically: true, encoding: .utf8)
            let pre = try await device.simulator.vigil(
                [
                    "admin", "eve", "preregister", "--onboarding-cert", pemFile, "--serial", device.serial, "--group",
                    "eve",
                ]
                    + controller.adminArguments)
            #expect(pre.status == 0, "\(pre.stderr)")

            #expect(try await client.get("/ping").status == 200)
            let trust = try await Self.fetchTrust(client, controller)

            // register: 201, the same certificate again 200, another certificate for the pair 409, an unknown
            // serial 403.
            #expect(try await device.register(client).status == 201)
            #expect(try await device.register(client).status == 200)
            let impostor = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "impostor")
            let conflict = try await device.register(client, certificate: impostor)
            #expect(conflict.status == 409 && conflict.text.contains("another device certificate"), "\(conflict.text)")
            let strangerDevice = Device(
                simulator: device.simulator, tpm: device.tpm, onboarding: onboarding, identity: impostor,
                serial: "NOT-PREREGISTERED", ak: device.ak, ek: device.ek)
            let stranger = try await strangerDevice.register(client)
            #expect(stranger.status == 403 && stranger.text.contains("pre-registered"), "\(stranger.text)")

            // uuid: assigned by the controller; the device is in the fleet view under its Vigil id.
            let uuid = try await Self.uuid(client, trust, device)
            #expect(UUID(uuidString: uuid) != nil)
            let admin = try await controller.admin()
            let registered = try await controller.controller.showDevice(admin, device.id)
            #expect(registered.eve?.uuid == uuid && registered.identityProof == "eve-device-certificate")
            #expect(registered.summary.policy == "eve-measured-boot@1")

            // A quote before the AK certificate: NO_CERT_FOUND.
            let early = try await Self.nonce(client, trust, device, uuid: uuid)
            let noCert = try await Self.sendQuote(
                client, trust, device, uuid: uuid,
                try await EVEClient.quote(device.tpm, nonce: early, eventLog: Self.eventLog))
            #expect(noCert.response == .noCertFound)

            // certificates, nonce, quote: SUCCESS with a token any relying party verifies offline.
            try await Self.uploadCertificates(client, trust, device, uuid: uuid)
            let n1 = try await Self.nonce(client, trust, device, uuid: uuid)
            #expect(n1.count == 32)
            let q1 = try await EVEClient.quote(device.tpm, nonce: n1, eventLog: Self.eventLog)
            let r1 = try await Self.sendQuote(client, trust, device, uuid: uuid, q1)
            #expect(r1.response == .success)
            #expect(r1.keys.isEmpty)
            let token1 = String(decoding: r1.integrityToken, as: UTF8.self)
            let resultKey = try String(contentsOfFile: controller.resultKeyPath, encoding: .utf8)
            let result = try await AttestationResult.verify(token1, publicKeyPEM: resultKey)
            #expect(result.passed && result.device == device.id.rawValue)
            #expect(result.nonce == Hex.encode(n1))
            #expect(result.akActivated == false)
            #expect(result.submods["vigil"]?.trustVector["instance-identity"] == 0)
            #expect(result.policy == "eve-measured-boot@1")

            // The same quote again (a replay by anyone who saw it): its nonce is spent. The replay is on record but
            // does not become the device's latest attestation, so it cannot withdraw the honest pass's token.
            let replay = try await Self.sendQuote(client, trust, device, uuid: uuid, q1)
            #expect(replay.response == .nonceMismatch)
            func volumeKey(_ seed: UInt8) -> Org_Lfedge_Eve_Attest_AttestVolumeKey {
                var k = Org_Lfedge_Eve_Attest_AttestVolumeKey()
                k.keyType = .vsk
                k.key = Data((0..<48).map { UInt8($0) &+ seed })
                return k
            }
            // Keys stored with the current token; a retry of the same store is fine; other keys under a token that
            // was already used (a replayed older store) are refused, so the stored keys cannot be rolled back.
            #expect(
                try await Self.storeKeys(
                    client, trust, device, uuid: uuid, token: r1.integrityToken, keys: [volumeKey(1)])
                    == .success)
            #expect(
                try await Self.storeKeys(
                    client, trust, device, uuid: uuid, token: r1.integrityToken, keys: [volumeKey(1)])
                    == .success)
            #expect(
                try await Self.storeKeys(
                    client, trust, device, uuid: uuid, token: r1.integrityToken, keys: [volumeKey(2)])
                    == .itokenMismatch)

            // They come back with the next pass only; its token stores new keys, the old one no longer does.
            let r2 = try await Self.sendQuote(
                client, trust, device, uuid: uuid,
                try await EVEClient.quote(
                    device.tpm, nonce: try await Self.nonce(client, trust, device, uuid: uuid), eventLog: Self.eventLog)
            )
            #expect(r2.response == .success)
            #expect(r2.keys == [volumeKey(1)])
            #expect(
                try await Self.storeKeys(
                    client, trust, device, uuid: uuid, token: r1.integrityToken, keys: [volumeKey(3)])
                    == .itokenMismatch)
            #expect(
                try await Self.storeKeys(
                    client, trust, device, uuid: uuid, token: r2.integrityToken, keys: [volumeKey(3)])
                    == .success)
            let r3 = try await Self.sendQuote(
                client, trust, device, uuid: uuid,
                try await EVEClient.quote(
                    device.tpm, nonce: try await Self.nonce(client, trust, device, uuid: uuid), eventLog: Self.eventLog)
            )
            #expect(r3.response == .success)
            #expect(r3.keys == [volumeKey(3)])

            // One quote sent twice at the same moment (a replay racing the original): accepted exactly once.
            let raced = try await EVEClient.quote(
                device.tpm, nonce: try await Self.nonce(client, trust, device, uuid: uuid), eventLog: Self.eventLog)
            async let left = Self.sendQuote(client, trust, device, uuid: uuid, raced)
            async let right = Self.sendQuote(client, trust, device, uuid: uuid, raced)
            let both = [try await left.response, try await right.response]
            #expect(both.filter { $0 == .success }.count == 1 && both.contains(.nonceMismatch), "\(both)")

            // A PCR the policy judges changes (something measured into PCR 8 that the log does not show).
            try await device.tpm.pcrExtend(8, digests: [.sha256: Array(SHA256.hash(data: Array("rootkit".utf8)))])
            let r4 = try await Self.sendQuote(
                client, trust, device, uuid: uuid,
                try await EVEClient.quote(
                    device.tpm, nonce: try await Self.nonce(client, trust, device, uuid: uuid), eventLog: Self.eventLog)
            )
            #expect(r4.response == .quoteFailed)
            #expect(r4.integrityToken.isEmpty && r4.keys.isEmpty)
            // The verdict history names the rule and the PCR, like any device's.
            let detail = try await controller.controller.showDevice(admin, device.id)
            let latest = try #require(detail.history.first)
            #expect(!latest.pass && latest.policy == "eve-measured-boot@1")
            #expect(latest.failures.contains { $0.pcr == 8 }, "\(latest.failures)")
            #expect(detail.history.contains { $0.refusal?.hasPrefix("nonce_used") == true })
            #expect(detail.history.contains { $0.refusal?.hasPrefix("no_cert_found") == true })
            // The token of the last pass is withdrawn with the failure.
            #expect(
                try await Self.storeKeys(client, trust, device, uuid: uuid, token: r3.integrityToken, keys: [])
                    == .itokenMismatch)
            // Every step is in the one audit chain.
            #expect(try await controller.controller.verifyAudit(admin).intact)
            // The security team's view: the CLI shows the EVE registration, that the AK was not activated, and the
            // failed rule with its PCR; the metrics count the EVE path's attestations like any other.
            let show = try await device.simulator.vigil(
                ["admin", "device", "show", device.id.rawValue] + controller.adminArguments)
            #expect(show.status == 0, "\(show.stderr)")
            #expect(show.stdout.contains("EVE device \(uuid)") && show.stdout.contains("NOT proven"), "\(show.stdout)")
            #expect(show.stdout.contains("PCR 8"), "\(show.stdout)")
            let metrics = try await client.http.execute(
                .init(url: controller.url + "/metrics"), timeout: .seconds(30))
            let exposition = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
            #expect(exposition.contains("operation=\"eveAttest\""), "\(exposition.prefix(400))")
            #expect(exposition.contains("vigil_attestations_total{verdict=\"pass\""), "\(exposition.prefix(400))")
        } catch {
            await client.shutdown()
            await controller.stop()
            throw error
        }
        await client.shutdown()
        await controller.stop()
    }
    // MARK: Forgeries and malformed requests

    @Test func forgedMalformedAndForeignRequestsAreRefusedNamingWhatIsWrong() async throws {
        let controller = try await ControllerHarness.start()
        let onboarding = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "EVE onboarding")
        let a = try await Device.boot("EVE-A", onboarding: onboarding)
        // Device B: an RSA device certificate (PKCS #1 v1.5), a blank TPM (its own EK and AK, no EK certificate).
        let rsaKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let b = try await { () async throws -> Device in
            let booted = try await Device.boot("EVE-B", onboarding: onboarding, fresh: true)
            return Device(
                simulator: booted.simulator, tpm: booted.tpm, onboarding: onboarding,
                identity: try .selfSigned(.rsa(rsaKey), commonName: "EVE device B (RSA)"), serial: booted.serial,
                ak: booted.ak, ek: booted.ek)
        }()
        let client = try EVEClient(
            url: controller.url, caPEM: try String(contentsOfFile: controller.caPath, encoding: .utf8))
        defer {
            a.stop()
            b.stop()
        }
        do {
            try await Self.prepareEVEFleet(controller)
            let admin = try await controller.admin()
            try await controller.controller.preregisterEVE(
                admin, Admin.EVEPreregistration(onboardingCertificate: onboarding.pem, serial: nil, group: "eve"))
            let trust = try await Self.fetchTrust(client, controller)
            #expect(try await a.register(client).status == 201)
            #expect(try await b.register(client).status == 201)
            let uuidA = try await Self.uuid(client, trust, a)
            // B signs with RSA PKCS #1 v1.5 and names itself by the 16-byte hash: accepted.
            let uuidB = try await Self.uuid(client, trust, b, algo: .sha25616Bytes)
            #expect(uuidA != uuidB)
            // A signs with an ASN.1 DER ECDSA signature (Go's ecdsa.SignASN1): accepted.
            #expect(try await Self.uuid(client, trust, a, form: .der) == uuidA)
            try await Self.uploadCertificates(client, trust, a, uuid: uuidA)

            func refused(
                _ answer: EVEClient.Answer, _ status: Int, _ reason: String,
                sourceLocation: SourceLocation = #_sourceLocation
            ) {
                #expect(answer.status == status, "\(answer.status): \(answer.text)", sourceLocation: sourceLocation)
                #expect(answer.text.contains(reason), "\(answer.text)", sourceLocation: sourceLocation)
            }
            let nonceRequest = try Self.request(.attestReqNonce).serializedBytes() as [UInt8]

            // A flipped bit in the signature.
            var container = try Org_Lfedge_Eve_Auth_AuthContainer(
                serializedBytes: try await EVEClient.sealPayload(nonceRequest, as: a.identity))
            container.signatureHash[5] ^= 0x01
            refused(
                try await client.post("/id/\(uuidA)/attest", try container.serializedBytes()), 401, "does not verify")
            // The payload altered under a valid signature.
            container = try Org_Lfedge_Eve_Auth_AuthContainer(
                serializedBytes: try await EVEClient.sealPayload(nonceRequest, as: a.identity))
            container.protectedPayload.payload = try Self.request(.attestReqQuote).serializedBytes()
            refused(
                try await client.post("/id/\(uuidA)/attest", try container.serializedBytes()), 401, "does not verify")
            // A truncated protobuf.
            let sealed = try await EVEClient.sealPayload(nonceRequest, as: a.identity)
            refused(
                try await client.post("/id/\(uuidA)/attest", Array(sealed.prefix(sealed.count - 7))), 422,
                "not a protobuf")
            // senderCertHash of the wrong length for its algo.
            container = try Org_Lfedge_Eve_Auth_AuthContainer(serializedBytes: sealed)
            container.senderCertHash = container.senderCertHash.prefix(20)
            refused(
                try await client.post("/id/\(uuidA)/attest", try container.serializedBytes()), 401,
                "senderCertHash is 20 bytes")
            // A device acting on another device's UUID.
            refused(
                try await a.attest(client, uuid: uuidB, Self.request(.attestReqNonce)), 403,
                "may act only on its own UUID")
            // A sender the controller does not know (its own key and certificate).
            let unknown = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "not registered")
            refused(
                try await client.post(
                    "/id/\(uuidA)/attest", try await EVEClient.sealPayload(nonceRequest, as: unknown)), 401,
                "no registered EVE device")
            // The right hash, another key's signature (the device's certificate, the attacker's key).
            let thief = Identity(key: .p256(P256.Signing.PrivateKey()), certificate: a.identity.certificate)
            refused(
                try await client.post("/id/\(uuidA)/attest", try await EVEClient.sealPayload(nonceRequest, as: thief)),
                401,
                "does not verify")
            // register signed by another key than the onboarding certificate it carries.
            var reg = Org_Lfedge_Eve_Register_ZRegisterMsg()
            reg.pemCert = Data(unknown.pem.utf8)
            reg.serial = "EVE-X"
            var forgedRegister = try Org_Lfedge_Eve_Auth_AuthContainer(
                serializedBytes: try await EVEClient.seal(reg, as: unknown, includeCertificate: true))
            forgedRegister.senderCert = Data(onboarding.pem.utf8).base64EncodedData()
            forgedRegister.senderCertHash = Data(SHA256.hash(data: onboarding.der))
            refused(try await client.post("/register", try forgedRegister.serializedBytes()), 401, "does not verify")
            // An encrypted envelope is not accepted in place of a signed payload.
            container = try Org_Lfedge_Eve_Auth_AuthContainer(serializedBytes: sealed)
            container.cipherData.cipherData = Data([1, 2, 3])
            refused(
                try await client.post("/id/\(uuidA)/attest", try container.serializedBytes()), 422, "encrypted payload")

            // Certificates: B claims A's AK (public, so anyone can certify it with their own device key).
            var stolenAK = Self.request(.attestReqCert)
            stolenAK.certs = [try await EVEClient.akCertificate(a.ak, by: b.identity)]
            refused(try await b.attest(client, uuid: uuidB, stolenAK), 409, "already another device's attestation key")
            // An AK certificate not issued by the device certificate.
            var notDevice = Self.request(.attestReqCert)
            notDevice.certs = [try await EVEClient.akCertificate(b.ak, by: onboarding)]
            refused(
                try await b.attest(client, uuid: uuidB, notDevice), 403,
                "not signed by the registered device certificate")
            // An AK certificate whose TPM2_PUBLIC is another key than the certificate's.
            var mismatched = Self.request(.attestReqCert)
            var z = try await EVEClient.akCertificate(b.ak, by: b.identity)
            z.metaDataItems[0].metaData = Data(a.ak.marshal())
            mismatched.certs = [z]
            refused(try await b.attest(client, uuid: uuidB, mismatched), 422, "not the key in its TPM2_PUBLIC")
            // A TPM2_PUBLIC that is not a restricted signing key (the device key's template: unrestricted).
            var unrestricted = Self.request(.attestReqCert)
            let deviceKey = try #require(try await b.tpm.readPublic(IdentityKeyTemplates.deviceKeyHandle)?.publicArea)
            var zu = try await EVEClient.akCertificate(deviceKey, by: b.identity)
            zu.metaDataItems[0].metaData = Data(deviceKey.marshal())
            unrestricted.certs = [zu]
            refused(try await b.attest(client, uuid: uuidB, unrestricted), 422, "not an attestation key")
            // B's quote before any AK certificate: NO_CERT_FOUND.
            let nB = try await Self.nonce(client, trust, b, uuid: uuidB)
            let early = try await Self.sendQuote(
                client, trust, b, uuid: uuidB, try await EVEClient.quote(b.tpm, nonce: nB, eventLog: Self.eventLog))
            #expect(early.response == .noCertFound)
            // B's own AK, immutable; replacing it later is refused.
            var own = Self.request(.attestReqCert)
            own.certs = [try await EVEClient.akCertificate(b.ak, by: b.identity, mutable: false)]
            #expect(try await b.attest(client, uuid: uuidB, own).status == 201)
            var replace = Self.request(.attestReqCert)
            replace.certs = [try await EVEClient.akCertificate(b.ak, by: b.identity)]  // re-issued: another certificate
            refused(try await b.attest(client, uuid: uuidB, replace), 403, "cannot be replaced")
            // The same certificate re-uploaded as mutable changes nothing: it stays immutable.
            var relabel = Self.request(.attestReqCert)
            relabel.certs = own.certs
            relabel.certs[0].attributes.isMutable = true
            #expect(try await b.attest(client, uuid: uuidB, relabel).status == 201)
            refused(try await b.attest(client, uuid: uuidB, replace), 403, "cannot be replaced")

            // Quotes: B's TPM quoting with A's nonce, sent by A: signed by another AK.
            let nA = try await Self.nonce(client, trust, a, uuid: uuidA)
            let foreign = try await Self.sendQuote(
                client, trust, a, uuid: uuidA, try await EVEClient.quote(b.tpm, nonce: nA, eventLog: Self.eventLog))
            #expect(foreign.response == .quoteFailed)
            // A quote with no PCR values: a failure (Adam counts it as success).
            var empty = try await EVEClient.quote(
                a.tpm, nonce: try await Self.nonce(client, trust, a, uuid: uuidA), eventLog: Self.eventLog)
            empty.pcrValues = []
            #expect(try await Self.sendQuote(client, trust, a, uuid: uuidA, empty).response == .quoteFailed)
            // B's nonce in A's quote: issued to another device.
            let nB2 = try await Self.nonce(client, trust, b, uuid: uuidB)
            let crossNonce = try await Self.sendQuote(
                client, trust, a, uuid: uuidA, try await EVEClient.quote(a.tpm, nonce: nB2, eventLog: Self.eventLog))
            #expect(crossNonce.response == .nonceMismatch)
            // An event log edited under unchanged PCRs (a byte of event data changed): refused by the verifier.
            var edited = Self.eventLog
            edited[edited.count - 40] ^= 0xff
            let tampered = try await Self.sendQuote(
                client, trust, a, uuid: uuidA,
                try await EVEClient.quote(
                    a.tpm, nonce: try await Self.nonce(client, trust, a, uuid: uuidA), eventLog: edited))
            #expect(tampered.response == .quoteFailed)
            // Not gzip.
            var notGzip = try await EVEClient.quote(
                a.tpm, nonce: try await Self.nonce(client, trust, a, uuid: uuidA), eventLog: nil)
            notGzip.tpmBinaryEventLog = Data(Self.eventLog.prefix(512))
            #expect(try await Self.sendQuote(client, trust, a, uuid: uuidA, notGzip).response == .quoteFailed)

            let history = try await controller.controller.showDevice(admin, a.id).history
            for code in ["signature_invalid", "quote_no_pcrs", "nonce_foreign", "eventlog_malformed"] {
                #expect(
                    history.contains { $0.refusal?.hasPrefix(code) == true }, "no \(code) in \(history.map(\.refusal))")
            }
            #expect(
                history.contains {
                    !$0.pass && $0.failures.contains { $0.rule.hasPrefix("eventlog") || $0.pcr != nil }
                        || $0.refusal != nil
                })

            // The honest quote still passes; then a policy requiring credential activation refuses the device by name.
            let pass = try await Self.sendQuote(
                client, trust, a, uuid: uuidA,
                try await EVEClient.quote(
                    a.tpm, nonce: try await Self.nonce(client, trust, a, uuid: uuidA), eventLog: Self.eventLog))
            #expect(pass.response == .success)
            let strict = """
                id: eve-activated
                version: 1
                extends: eve-measured-boot
                identity:
                  ak_activated: required

                """
            let evePolicy = try String(
                contentsOf: SoftwareTPM.repositoryRoot.appendingPathComponent("policies/eve-measured-boot.yaml"),
                encoding: .utf8)
            _ = try await controller.controller.addPolicy(
                admin, name: PolicyName("eve-activated")!,
                Admin.PolicyUpload(yaml: strict, parents: [evePolicy] + (try ControllerFixtures.fleetParents())))
            _ = try await controller.controller.assignPolicy(
                admin, name: PolicyName("eve-activated")!,
                Admin.PolicyAssignment(device: a.id, group: nil, version: nil))
            let refusedByPolicy = try await Self.sendQuote(
                client, trust, a, uuid: uuidA,
                try await EVEClient.quote(
                    a.tpm, nonce: try await Self.nonce(client, trust, a, uuid: uuidA), eventLog: Self.eventLog))
            #expect(refusedByPolicy.response == .quoteFailed)
            let last = try #require(try await controller.controller.showDevice(admin, a.id).history.first)
            #expect(last.failures.map(\.rule) == ["identity.ak_activated"], "\(last.failures)")

            // The EK certificate must chain to the vendor bundle the device's policy names: refused against another
            // vendor's CAs (here the controller's own CA stands in for the wrong vendor), accepted against swtpm's.
            let ek = try #require(a.ek)
            _ = try await controller.controller.putEKCABundle(
                admin, name: EKCABundleName("wrong-vendor")!,
                Admin.EKCABundleUpload(certificates: [try String(contentsOfFile: controller.caPath, encoding: .utf8)]))
            for (name, bundle) in [("eve-wrong-vendor", "wrong-vendor"), ("eve-swtpm-vendor", "swtpm-vendor")] {
                _ = try await controller.controller.addPolicy(
                    admin, name: PolicyName(name)!,
                    Admin.PolicyUpload(
                        yaml: "id: \(name)\nversion: 1\nextends: eve-measured-boot\nidentity:\n  ek_ca: \(bundle)\n",
                        parents: [evePolicy] + (try ControllerFixtures.fleetParents())))
            }
            var ekUpload = Self.request(.attestReqCert)
            ekUpload.certs = [EVEClient.zcert(ek, .certTypeDeviceEndorsementRsa, mutable: true)]
            _ = try await controller.controller.assignPolicy(
                admin, name: PolicyName("eve-wrong-vendor")!,
                Admin.PolicyAssignment(device: a.id, group: nil, version: nil))
            refused(
                try await a.attest(client, uuid: uuidA, ekUpload), 403, "does not chain to EK CA bundle wrong-vendor")
            _ = try await controller.controller.assignPolicy(
                admin, name: PolicyName("eve-swtpm-vendor")!,
                Admin.PolicyAssignment(device: a.id, group: nil, version: nil))
            #expect(try await a.attest(client, uuid: uuidA, ekUpload).status == 201)

            // Registration: hostile serials; a device certificate taken first by someone else (seen on the wire and
            // registered under another serial) until the team unregisters the squatter.
            let c = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "EVE device C")
            func register(_ cert: Identity, serial: String) async throws -> EVEClient.Answer {
                var m = Org_Lfedge_Eve_Register_ZRegisterMsg()
                m.pemCert = Data(cert.pem.utf8)
                m.serial = serial
                return try await client.post(
                    "/register", try await EVEClient.seal(m, as: onboarding, includeCertificate: true))
            }
            refused(try await register(c, serial: "EVE-\u{202E}C"), 422, "format characters")
            refused(
                try await register(c, serial: "E" + String(repeating: "\u{301}", count: 300)), 422,
                "bytes (at most 256)")
            #expect(try await register(c, serial: "EVE-SQUAT").status == 201)
            refused(try await register(c, serial: "EVE-C"), 409, "already registered")
            let squatter = try #require(
                try await controller.controller.showDevice(
                    admin, DeviceID(eveDeviceKey: Array(c.certificate.publicKey.subjectPublicKeyInfoBytes))
                ).eve)
            #expect(squatter.serial == "EVE-SQUAT")
            try await controller.controller.unregisterEVE(admin, uuid: squatter.uuid)
            #expect(try await register(c, serial: "EVE-C").status == 201)

            // A replaced AK cannot be brought back by replaying its old upload (the envelope has no freshness).
            let uuidC = try #require(
                try await controller.controller.showDevice(
                    admin, DeviceID(eveDeviceKey: Array(c.certificate.publicKey.subjectPublicKeyInfoBytes))
                ).eve?.uuid)
            func softAK() -> TPMTPublic {
                let raw = P256.Signing.PrivateKey().publicKey.rawRepresentation
                return TPMTPublic(
                    nameAlg: .sha256, objectAttributes: a.ak.objectAttributes,
                    parameters: .ecc(
                        .init(
                            symmetric: .null, scheme: TPMTScheme(.ecdsa, hashAlg: .sha256), curve: .nistP256,
                            kdf: .null, x: Array(raw.prefix(32)), y: Array(raw.suffix(32)))))
            }
            let (first, second) = (softAK(), softAK())
            func upload(_ ak: TPMTPublic) async throws -> EVEClient.Answer {
                var r = Self.request(.attestReqCert)
                r.certs = [try await EVEClient.akCertificate(ak, by: c, mutable: true)]
                return try await client.post("/id/\(uuidC)/attest", try await EVEClient.seal(r, as: c))
            }
            #expect(try await upload(first).status == 201)
            #expect(try await upload(second).status == 201)
            refused(try await upload(first), 403, "cannot be brought back")

            // Revoked: every request is refused, and registering again too.
            try await controller.controller.revokeDevice(admin, a.id)
            refused(try await a.attest(client, uuid: uuidA, Self.request(.attestReqNonce)), 403, "revoked")
            refused(try await a.register(client), 403, "revoked")
            #expect(try await controller.controller.verifyAudit(admin).intact)
        } catch {
            await client.shutdown()
            await controller.stop()
            throw error
        }
        await client.shutdown()
        await controller.stop()
    }
    // MARK: Signatures from another implementation

    /// OpenSSL, an implementation independent of swift-crypto, makes the device certificates and signs the payloads:
    /// ECDSA P-256 in ASN.1 DER (what Go's `ecdsa.SignASN1` and a TPM-backed `crypto.Signer` produce) and RSA-2048
    /// PKCS #1 v1.5 with SHA-256 (Go's `rsa.SignPKCS1v15`). The controller accepts both, and refuses either over
    /// another payload.
    @Test func signaturesMadeByOpenSSLVerify() async throws {
        let opensslPath = try #require(SoftwareTPM.which("openssl"), "openssl (Debian package openssl) is needed")
        let controller = try await ControllerHarness.start()
        let client = try EVEClient(
            url: controller.url, caPEM: try String(contentsOfFile: controller.caPath, encoding: .utf8))
        let dir = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let onboarding = try Identity.selfSigned(.p256(P256.Signing.PrivateKey()), commonName: "EVE onboarding")
            let admin = try await controller.admin()
            try await controller.controller.preregisterEVE(
                admin, Admin.EVEPreregistration(onboardingCertificate: onboarding.pem, serial: nil, group: "eve"))
            let trust = try await Self.fetchTrust(client, controller)
            func openssl(_ args: [String]) throws {
                let r = try ProcessRunner.run(opensslPath, args)
                guard r.status == 0 else { throw EVETestError("openssl \(args.first ?? ""): \(r.stderr)") }
            }
            for (kind, generate) in [
                ("ec", ["ecparam", "-name", "prime256v1", "-genkey", "-noout"]), ("rsa", ["genrsa"]),
            ] {
                let key = dir.appendingPathComponent("\(kind).key").path
                let pem = dir.appendingPathComponent("\(kind).pem").path
                try openssl(generate + ["-out", key] + (kind == "rsa" ? ["2048"] : []))
                try openssl([
                    "req", "-new", "-x509", "-sha256", "-key", key, "-subj", "/CN=openssl-\(kind)", "-days", "30",
                    "-out", pem,
                ])
                let certificate = try Certificate(pemEncoded: try String(contentsOfFile: pem, encoding: .utf8))
                var register = Org_Lfedge_Eve_Register_ZRegisterMsg()
                register.pemCert = Data(try String(contentsOfFile: pem, encoding: .utf8).utf8)
                register.serial = "OPENSSL-\(kind)"
                let registered = try await client.post(
                    "/register", try await EVEClient.seal(register, as: onboarding, includeCertificate: true))
                #expect(registered.status == 201, "\(kind): \(registered.text)")

                func signedByOpenSSL(_ payload: [UInt8], signing signed: [UInt8]) throws -> [UInt8] {
                    let file = dir.appendingPathComponent("payload").path
                    let sig = dir.appendingPathComponent("sig").path
                    try Data(signed).write(to: URL(fileURLWithPath: file))
                    try openssl(["dgst", "-sha256", "-sign", key, "-out", sig, file])
                    var c = Org_Lfedge_Eve_Auth_AuthContainer()
                    c.protectedPayload.payload = Data(payload)
                    c.algo = .sha25632Bytes
                    var s = DER.Serializer()
                    try s.serialize(certificate)
                    c.senderCertHash = Data(SHA256.hash(data: s.serializedBytes))
                    c.signatureHash = try Data(contentsOf: URL(fileURLWithPath: sig))
                    return try c.serializedBytes()
                }
                let payload: [UInt8] = try Org_Lfedge_Eve_Uuid_UuidRequest().serializedBytes()
                let answer = try await client.post("/uuid", try signedByOpenSSL(payload, signing: payload))
                #expect(answer.status == 200, "\(kind): \(answer.text)")
                if answer.status == 200 {
                    #expect(
                        UUID(uuidString: try trust.open(answer, as: Org_Lfedge_Eve_Uuid_UuidResponse.self).uuid) != nil)
                }
                let forged = try await client.post("/uuid", try signedByOpenSSL(payload, signing: payload + [0x00]))
                #expect(forged.status == 401 && forged.text.contains("does not verify"), "\(kind): \(forged.text)")
            }
        } catch {
            await client.shutdown()
            await controller.stop()
            throw error
        }
        await client.shutdown()
        await controller.stop()
    }
}
