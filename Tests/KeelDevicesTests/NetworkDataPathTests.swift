import Foundation
import KeelSystem
import KeelTestSupport
import Synchronization
import Testing

/// The network adapter's whole data path without a VM, through `keel-netpath-bench`: guest rings
/// and buffers in real guest RAM, NVSP and RNDIS, the TAP's I/O (a socket pair), and a fake
/// netvsc guest that checks what arrives. The tool exits non-zero unless every large send reached
/// the TAP side and was completed, and every coalesced frame reached the guest and was answered.
@Suite struct NetworkDataPathTests {
    static let tool = TestEnvironment.path(".build/debug/keel-netpath-bench")

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let child = try ChildProcess(arguments: [Self.tool] + arguments)
        let finished = Mutex(false)
        let watchdog = try NamedThread(name: "netpath-watchdog") {
            for _ in 0..<600 where !finished.withLock({ $0 }) { usleep(100_000) }
            if !finished.withLock({ $0 }) { child.send(signal: SIGKILL) }
        }
        var output: [UInt8] = []
        while let chunk = try? child.output.read(maxCount: 4096), !chunk.isEmpty { output += chunk }
        let status = child.wait()
        finished.withLock { $0 = true }
        watchdog.join()
        return (status, String(decoding: output, as: UTF8.self))
    }

    @Test(arguments: ["tx", "rx"])
    func everyPacketArrivesAndIsCompleted(direction: String) throws {
        let result = try run([direction, "--packets", "300"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("netpath \(direction): 300 packets"), "\(result.output)")
    }
}
