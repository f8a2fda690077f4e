import Foundation
import KeelTestSupport
import KeelVM
import Synchronization
import Testing

/// The partition's run control on this machine's /dev/kvm, with a tiny kernel that spins.
@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")))
struct PartitionTests {
    func waitFor(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test(.timeLimit(.minutes(1)))
    func pauseParksEveryProcessorAndResumeReleasesThem() throws {
        let kernel = NSTemporaryDirectory() + "keel-spin-\(UUID().uuidString).bzImage"
        try Data(TinyKernel.image(code: TinyKernel.spin)).write(to: URL(fileURLWithPath: kernel))
        defer { try? FileManager.default.removeItem(atPath: kernel) }
        let output = Mutex<[UInt8]>([])
        let partition = try Partition(configuration: VMConfiguration(kernelPath: kernel, memoryMiB: 64, cpus: 2),
                                      consoleOutput: { byte in output.withLock { $0.append(byte) } },
                                      log: { _ in })
        try partition.start()
        partition.pause()
        #expect(waitFor { partition.pausedProcessors == 2 })
        partition.resume()
        #expect(waitFor { partition.pausedProcessors == 0 })
        partition.requestStop()
        #expect(partition.waitUntilStopped() == .stopRequested)
    }
}
