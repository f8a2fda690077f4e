import Testing
@testable import KeelVMBus

@Suite struct VersionNegotiationTests {
    @Test(arguments: VMBusVersion.linuxVersions) func everyLinuxVersionIsAccepted(_ version: VMBusVersion) {
        var server = VMBusServer(configuration: .init(vpCount: 1), memory: makeMemory())
        let output = server.receive(contact(version).encode(), connectionID: version.hasMessageSINT ? 4 : 1)
        #expect(messages(output) == [.versionResponse(.init(versionSupported: true, messageConnectionID: 1))])
        #expect(output.messages.first?.sint == 2)
        #expect(server.connection?.version == version)
    }

    /// Linux 6.1 and 6.12 try 5.3 first and fall back one version per refusal.
    @Test func linuxFallsBackUntilAVersionIsAccepted() {
        var server = VMBusServer(configuration: .init(supportedVersions: [.win10, .win8_1], vpCount: 1),
                                 memory: makeMemory())
        var accepted: VMBusVersion?
        for version in VMBusVersion.linuxVersions {
            let output = server.receive(contact(version).encode(), connectionID: version.hasMessageSINT ? 4 : 1)
            guard case let .versionResponse(response)? = messages(output).first else {
                Issue.record("no answer to \(version)")
                return
            }
            if response.versionSupported {
                accepted = version
                break
            }
            #expect(server.connection == nil)
            #expect(output.diagnostics.first?.kind == .versionRefused)
        }
        #expect(accepted == .win10)
    }

    @Test func unknownVersionsAreRefused() {
        for raw: UInt32 in [0x0000_000D, 0x0001_0001, 0x0006_0000, 0x0005_0004, 0xFFFF_FFFF] {
            var server = VMBusServer(configuration: .init(vpCount: 1), memory: makeMemory())
            let output = server.handle(contact(VMBusVersion(rawValue: raw)))
            #expect(messages(output) == [.versionResponse(.init(versionSupported: false,
                                                                 messageConnectionID: VMBusVersion.win10V5_3.rawValue))])
            #expect(server.connection == nil)
        }
    }

    @Test func responseGoesToTheRequestedTargetVP() {
        var server = VMBusServer(configuration: .init(vpCount: 4), memory: makeMemory())
        let output = server.handle(contact(.win10V5_2, targetVP: 3))
        #expect(output.messages.first?.targetVP == 3)
        // Below 3.0 the target VP is always 0.
        var old = VMBusServer(configuration: .init(vpCount: 4), memory: makeMemory())
        #expect(old.handle(contact(.win8, targetVP: 3)).messages.first?.targetVP == 0)
    }

    @Test func missingTargetVPIsRefusedOnVP0() {
        var server = VMBusServer(configuration: .init(vpCount: 2), memory: makeMemory())
        let output = server.handle(contact(.win10V5_3, targetVP: 9))
        #expect(output.messages.first?.targetVP == 0)
        #expect(messages(output).first == .versionResponse(.init(versionSupported: false,
                                                                 messageConnectionID: VMBusVersion.win10V5_3.rawValue)))
    }

    @Test func connectionIDs() {
        let server = VMBusServer(configuration: .init(vpCount: 1), memory: makeMemory())
        #expect(server.acceptsMessages(onConnectionID: 1))
        #expect(server.acceptsMessages(onConnectionID: 4))
        #expect(!server.acceptsMessages(onConnectionID: 2))
        var copy = server
        let output = copy.receive(contact(.win10V5_3).encode(), connectionID: 0x2001)
        #expect(output.messages.isEmpty)
        #expect(output.diagnostics.first?.kind == .wrongConnectionID)
    }
}
