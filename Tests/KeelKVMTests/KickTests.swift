import KeelKVM
import KeelSystem
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")))
struct KickTests {
    @Test(.timeLimit(.minutes(1)))
    func kickInterruptsASpinningGuest() throws {
        let payload = try TinyPayload(code: [0xEB, 0xFE])  // jmp $
        let result = Mutex<VCPUExit?>(nil)
        let vcpu = payload.vcpu
        let thread = try NamedThread(name: "test-vcpu") {
            vcpu.prepareCurrentThread()
            let exit = vcpu.runOnce()
            result.withLock { $0 = exit }
        }
        // Kicks that land before KVM_RUN starts are not lost (immediate_exit), so one is enough;
        // repeat a few times only to bound the wait.
        for _ in 0..<50 where result.withLock({ $0 }) == nil {
            thread.send(signal: KVMSystem.kickSignal)
            usleep(20_000)
        }
        thread.join()
        let exit = result.withLock { $0 }
        #expect(exit == .interrupted)
    }
}
