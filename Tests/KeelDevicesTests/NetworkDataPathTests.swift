import KeelTestSupport
import Testing

/// The network adapter's whole data path without a VM, through `keel-netpath-bench`: guest rings
/// and buffers in real guest RAM, NVSP and RNDIS, the TAP's I/O (a socket pair), and a fake
/// netvsc guest that checks what arrives. The tool exits non-zero unless every large send reached
/// the TAP side and was completed, and every coalesced frame reached the guest and was answered.
@Suite struct NetworkDataPathTests {
    static let tool = TestEnvironment.path(".build/debug/keel-netpath-bench")

    @Test(arguments: ["tx", "rx"])
    func everyPacketArrivesAndIsCompleted(direction: String) throws {
        // `timeout`: a hang in the data path fails the test instead of stalling the run.
        let result = try runHostCommand(["timeout", "60", Self.tool, direction, "--packets", "300"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("netpath \(direction): 300 packets"), "\(result.output)")
    }
}
