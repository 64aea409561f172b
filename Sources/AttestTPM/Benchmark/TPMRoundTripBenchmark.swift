internal import CTSS2
import Foundation

/// What Vigil's TPM access costs per command on top of libtss2: `TPM2_GetRandom` (Part 3 §16.1, the cheapest
/// command, so the fixed cost shows) sent through the ``TPM`` actor, with its event-loop hop, error mapping
/// and ``TCTIDeadline``, next to the same command sent with plain `Esys_GetRandom` calls on a bare ESAPI
/// context over the same TCTI, in the same run.
public struct TPMRoundTripBenchmark: Sendable {
    public struct Result: Codable, Sendable {
        /// Median microseconds per GetRandom through the `TPM` actor.
        public let vigil_getrandom_us: Double
        /// Median microseconds per GetRandom with bare `Esys_GetRandom` (the peer).
        public let esapi_getrandom_us: Double
        public let overhead_percent: Double
        public let tcti: String
        public let rounds: Int
        public let commands_per_round: Int
    }

    public let tcti: TCTIConfiguration
    public let rounds: Int
    public let commandsPerRound: Int

    public init(tcti: TCTIConfiguration, rounds: Int = 5, commandsPerRound: Int = 1000) {
        self.tcti = tcti
        self.rounds = max(1, rounds)
        self.commandsPerRound = max(1, commandsPerRound)
    }

    /// Alternates rounds of the two ways (Vigil, then bare ESAPI) and keeps the median of each.
    public func run() async throws(TPMError) -> Result {
        let tpm = try await TPM.open(tcti)  // also issues TPM2_Startup on a fresh simulator
        var vigil: [Double] = [], esapi: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<commandsPerRound { _ = try await tpm.getRandom(16) }
            vigil.append(Self.microseconds(ContinuousClock.now - start) / Double(commandsPerRound))
            esapi.append(try Self.bareESAPIRound(tcti, commands: commandsPerRound))
        }
        let v = Self.median(vigil), e = Self.median(esapi)
        return Result(
            vigil_getrandom_us: v, esapi_getrandom_us: e, overhead_percent: (v / e - 1) * 100,
            tcti: tcti.description, rounds: rounds, commands_per_round: commandsPerRound)
    }

    /// Microseconds per command for `commands` bare `Esys_GetRandom` calls on a fresh context.
    static func bareESAPIRound(_ tcti: TCTIConfiguration, commands: Int) throws(TPMError) -> Double {
        var tctiContext: OpaquePointer? = nil
        let rc = tcti.loaderString.withCString { Tss2_TctiLdr_Initialize($0, &tctiContext) }
        guard rc == 0, tctiContext != nil else {
            throw TPMError.tss2("Tss2_TctiLdr_Initialize", TSS2Error(rawValue: rc))
        }
        defer { Tss2_TctiLdr_Finalize(&tctiContext) }
        var esys: OpaquePointer? = nil
        let erc = Esys_Initialize(&esys, tctiContext, nil)
        guard erc == 0 else { throw TPMError.tss2("Esys_Initialize", TSS2Error(rawValue: erc)) }
        defer { Esys_Finalize(&esys) }
        let start = ContinuousClock.now
        for _ in 0..<commands {
            var random: UnsafeMutablePointer<TPM2B_DIGEST>? = nil
            let grc = Esys_GetRandom(esys, ESYS.none, ESYS.none, ESYS.none, 16, &random)
            Esys_Free(random)
            guard grc == 0 else { throw TPMError.tss2("Esys_GetRandom", TSS2Error(rawValue: grc)) }
        }
        return microseconds(ContinuousClock.now - start) / Double(commands)
    }

    static func microseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}
