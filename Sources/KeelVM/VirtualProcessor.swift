import KeelKVM
import KeelSystem
import Synchronization

/// One virtual processor: a KVM vCPU and the named thread that runs its exit loop.
final class VirtualProcessor: Sendable {
    let vcpu: KVMVirtualCPU
    private let dispatcher: ExitDispatcher
    private let control: RunControl
    let statistics = ExitStatistics()
    private let thread = Mutex<NamedThread?>(nil)

    init(vcpu: KVMVirtualCPU, dispatcher: ExitDispatcher, control: RunControl) {
        self.vcpu = vcpu
        self.dispatcher = dispatcher
        self.control = control
    }

    func start() throws(SystemError) {
        let vcpu = self.vcpu, dispatcher = self.dispatcher, control = self.control, statistics = self.statistics
        let t = try NamedThread(name: "keel-vcpu\(vcpu.id)") {
            vcpu.prepareCurrentThread()
            Self.loop(vcpu: vcpu, dispatcher: dispatcher, control: control, statistics: statistics)
        }
        thread.withLock { $0 = t }
    }

    /// The exit loop: enter the guest, dispatch the exit, repeat until the partition stops.
    private static func loop(vcpu: KVMVirtualCPU, dispatcher: ExitDispatcher, control: RunControl,
                             statistics: ExitStatistics) {
        while control.mayRun() {
            let exit = vcpu.runOnce()
            statistics.record(exit, on: vcpu)
            switch dispatcher.handle(exit, on: vcpu) {
            case .resume, .halted, .interrupted:
                continue
            case .stop(let reason):
                control.requestStop(reason)
                return
            }
        }
    }

    func kick() { thread.withLock { $0 }?.send(signal: KVMSystem.kickSignal) }
    func join() { thread.withLock { $0 }?.join() }
}
