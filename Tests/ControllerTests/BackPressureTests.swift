import AsyncHTTPClient
import Attest
import Controller
import ControllerClient
import ControllerProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import VigilTestSupport

@testable import Node

/// Rate limits and back-pressure (issue 12, point 4): a device that asks too often is told when to come back
/// (429 with `Retry-After`), on every instance at once; an instance at its in-flight limit answers 503 with
/// `Retry-After` at once instead of queueing, and recovers as soon as the load goes.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct BackPressureTests {
    /// A bare HTTPS client (the test needs the headers and a body it controls).
    final class RawClient: Sendable {
        let http: HTTPClient
        let base: String

        init(_ controller: ControllerHarness) throws {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(
                try NIOSSLCertificate.fromPEMBytes(
                    Array(try String(contentsOfFile: controller.caPath, encoding: .utf8).utf8)))
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            base = controller.url
        }

        struct Answer {
            let status: Int
            let retryAfter: String?
            let text: String
            var code: String { ControllerClientError(status: status, body: Array(text.utf8)).code }
        }

        func send(
            _ method: HTTPMethod, _ path: String, body: HTTPClientRequest.Body? = nil,
            headers: [(String, String)] = []
        ) async throws -> Answer {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = body }
            let response = try await http.execute(request, timeout: .seconds(60))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return Answer(
                status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"),
                text: String(buffer: bytes))
        }

        func shutdown() async { try? await http.shutdown() }
    }

    @Test(arguments: ControllerHarness.Database.available)
    func aDeviceAskingTooOftenIsToldWhenToComeBackOnEveryInstance(_ database: ControllerHarness.Database)
        async throws
    {
        var configuration = Controller.Configuration()
        configuration.noncesPerDevicePerMinute = 5
        configuration.evidenceBurstPerDevice = 3
        let first = try await ControllerHarness.start(database, configuration: configuration)
        // On PostgreSQL the device alternates between two instances: the nonce limit is the database's, not each
        // instance's.
        let second = database == .postgres ? try await first.anotherInstance() : nil
        let device = try TestDevice()
        defer { device.stop() }
        let clients = try [first, second ?? first].map(RawClient.init)
        do {
            try await first.prepareFleet()
            let id = try #require(
                DeviceID(try await ControllerEndToEndTests.bootAndOnboard(device, first, group: "lab")))
            let tpm = try await device.open()
            let ca = try String(contentsOfFile: first.caPath, encoding: .utf8)
            let agent = DeviceAgent(tpm: tpm, connection: try ControllerConnection(url: first.url, caPEM: ca))
            // Onboarding's nonces leave the window.
            for instance in [first, second].compactMap({ $0 }) { instance.advanceClock(by: 61) }
            let noncePath = try #require(APIOperation.named("attestNonce")).path
            func askForNonce(_ client: RawClient) async throws -> RawClient.Answer {
                let header = try await agent.signedAuthorization(path: noncePath, device: id, body: [])
                return try await client.send(.POST, noncePath, headers: [("Authorization", header)])
            }
            for i in 0..<5 {
                let granted = try await askForNonce(clients[i % 2])
                #expect(granted.status == 200, "nonce \(i + 1): \(granted.text)")
            }
            let refused = try await askForNonce(clients[1])
            #expect(refused.status == 429, "\(refused.text)")
            #expect(refused.code == "nonce_rate_limited", "\(refused.text)")
            let wait = try #require(refused.retryAfter.flatMap(Int.init), "no Retry-After: \(refused)")
            #expect((1...60).contains(wait), "Retry-After: \(wait)")
            // Refusals are not audited: a flooding device cannot grow the chain.
            func auditedNonces() async throws -> Int64? {
                try await first.backend.transaction { tx throws(ControllerError) in
                    try await tx.first("SELECT COUNT(*) AS n FROM audit WHERE action = ?", [.text("nonce")])?
                        .requiredInteger("n")
                }
            }
            let audited = try await auditedNonces()
            for _ in 0..<20 { #expect(try await askForNonce(clients[0]).status == 429) }
            #expect(try await auditedNonces() == audited)
            // Once the window has moved on, the device is served again.
            for instance in [first, second].compactMap({ $0 }) { instance.advanceClock(by: 61) }
            #expect(try await askForNonce(clients[1]).status == 200)

            // Evidence: three junk bodies are read and refused for what they are; the fourth is not even parsed.
            let attestPath = try #require(APIOperation.named("attest")).path
            let junk = Array(#"{"version":1}"#.utf8)
            for i in 0..<3 {
                let header = try await agent.signedAuthorization(path: attestPath, device: id, body: junk)
                let answer = try await clients[0].send(
                    .POST, attestPath, body: .bytes(ByteBuffer(bytes: junk)), headers: [("Authorization", header)])
                #expect(answer.status == 400 || answer.status == 422, "evidence \(i + 1): \(answer.text)")
            }
            let header = try await agent.signedAuthorization(path: attestPath, device: id, body: junk)
            let limited = try await clients[0].send(
                .POST, attestPath, body: .bytes(ByteBuffer(bytes: junk)), headers: [("Authorization", header)])
            #expect(limited.status == 429, "\(limited.text)")
            #expect(limited.code == "evidence_rate_limited", "\(limited.text)")
            #expect(limited.retryAfter.flatMap(Int.init) != nil, "\(limited)")
            await agent.connection.shutdown()
        } catch {
            Issue.record("\(error)")
        }
        for client in clients { await client.shutdown() }
        await second?.stop()
        await first.stop()
    }

    @Test func anInstanceAtItsInFlightLimitAnswers503AtOnceAndRecovers() async throws {
        var configuration = Controller.Configuration()
        configuration.maximumInFlight = 1
        let controller = try await ControllerHarness.start(.sqlite, configuration: configuration)
        let client = try RawClient(controller)
        // One request holds the only slot: its body arrives in two parts, the second only when the test says.
        let (parts, more) = AsyncStream.makeStream(of: ByteBuffer.self)
        more.yield(ByteBuffer(bytes: [UInt8](repeating: 0x7b, count: 1024)))
        let attestPath = try #require(APIOperation.named("attest")).path
        let held = Task {
            try await client.send(.POST, attestPath, body: .stream(parts, length: .known(Int64(2048))))
        }
        do {
            // The slot is taken once the held request's head has arrived: /metrics (exempt, so it takes no slot
            // itself) says so.
            var admitted = false
            for _ in 0..<400 where !admitted {
                admitted = try await client.send(.GET, "/metrics").text.contains("vigil_requests_in_flight 1")
                if !admitted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(admitted, "the held request never reached the controller")
            // Every other request is refused at once while it is held.
            let refusal = try await client.send(.GET, "/v1/result-key")
            #expect(refusal.status == 503, "\(refusal.text)")
            #expect(refusal.code == "overloaded", "\(refusal.text)")
            #expect(refusal.retryAfter == "1")
            // Liveness and metrics still answer, and the refusals are counted.
            #expect(try await client.send(.GET, "/healthz").status == 200)
            let metrics = try await client.send(.GET, "/metrics")
            #expect(metrics.text.contains("vigil_overloaded_requests_total"), "\(metrics.text.prefix(400))")
            // The held request completes (refused: it carries no device signature), and the slot is free again.
            more.yield(ByteBuffer(bytes: [UInt8](repeating: 0x20, count: 1024)))
            more.finish()
            let heldAnswer = try await held.value
            #expect(heldAnswer.status == 401, "\(heldAnswer.text)")
            #expect(try await client.send(.GET, "/v1/result-key").status == 200)
        } catch {
            Issue.record("\(error)")
            more.finish()
            _ = await held.result
        }
        await client.shutdown()
        await controller.stop()
    }

    @Test func aClientThatNeverFinishesItsBodyIsAnsweredAtTheDeadlineAndHoldsNoSlot() async throws {
        var configuration = Controller.Configuration()
        configuration.maximumInFlight = 1
        configuration.requestDeadline = 1
        let controller = try await ControllerHarness.start(.sqlite, configuration: configuration)
        let client = try RawClient(controller)
        // A slow client: half its declared body, then nothing.
        let (parts, more) = AsyncStream.makeStream(of: ByteBuffer.self)
        more.yield(ByteBuffer(bytes: [UInt8](repeating: 0x7b, count: 1024)))
        let attestPath = try #require(APIOperation.named("attest")).path
        do {
            // Without the deadline this would wait for the client's own 60 s timeout and fail.
            let answer = try await client.send(.POST, attestPath, body: .stream(parts, length: .known(Int64(2048))))
            #expect(answer.status == 503, "\(answer.text)")
            #expect(answer.code == "request_timeout", "\(answer.text)")
            #expect(answer.retryAfter != nil)
            // Its slot is free: the next request is served.
            #expect(try await client.send(.GET, "/v1/result-key").status == 200)
        } catch {
            Issue.record("\(error)")
        }
        more.finish()
        await client.shutdown()
        await controller.stop()
    }
}
