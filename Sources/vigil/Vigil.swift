import ArgumentParser

@main
struct Vigil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Vigil: TPM-rooted identity, measured-boot attestation and sealed secrets for edge devices.",
        subcommands: [
            TPMCommand.self, QuoteCommand.self, EventLogCommand.self, PolicyCommand.self, EKCommand.self,
            AKCommand.self, BenchmarkCommand.self, ControllerCommand.self, DeviceCommand.self, AdminCommand.self,
            ResultCommand.self, VaultCommand.self, NodeCommand.self, DemoCommand.self, LoadTestCommand.self,
        ]
    )
}
