import KeelManagement
import Testing

/// The VM state machine: allowed actions per state, and the state a worker's exit leads to.
struct LifecycleTests {
    func allowed(_ action: VMAction, _ state: VMState) -> Bool {
        (try? Lifecycle.check(action, in: state, name: "vm")) != nil
    }

    @Test func actionsPerState() {
        let table: [VMAction: Set<VMState>] = [
            .start: [.stopped, .crashed],
            .stop: [.starting, .running, .paused, .stopping],
            .forceStop: [.starting, .running, .paused, .stopping],
            .kill: [.starting, .running, .paused, .stopping],
            .pause: [.running],
            .resume: [.paused],
            .delete: [.stopped, .crashed, .corrupt],
            .console: [.running, .paused, .stopping],
        ]
        for action in VMAction.allCases {
            for state in VMState.allCases {
                #expect(allowed(action, state) == table[action]!.contains(state), "\(action) in \(state)")
            }
        }
    }

    @Test func refusalsSayWhyWithConflictStatus() {
        #expect(throws: APIError(.invalidState, "VM 'vm' is running: cannot delete; stop it first (keel stop vm)")) {
            try Lifecycle.check(.delete, in: .running, name: "vm")
        }
        #expect(APIError.Code.invalidState.httpStatus == 409)
    }

    @Test func workerExits() {
        #expect(Lifecycle.afterExit(.exited(0), requested: .graceful).state == .stopped)
        #expect(Lifecycle.afterExit(.exited(0), requested: nil).state == .stopped)   // guest powered off by itself
        #expect(Lifecycle.afterExit(.exited(143), requested: .graceful) == (.stopped,
            "turned off: the guest did not shut down in time (or has no shutdown service)"))
        #expect(Lifecycle.afterExit(.exited(130), requested: .turnOff).state == .stopped)
        #expect(Lifecycle.afterExit(.exited(3), requested: nil).state == .stopped)
        #expect(Lifecycle.afterExit(.exited(4), requested: nil).state == .crashed)
        #expect(Lifecycle.afterExit(.exited(1), requested: nil).state == .crashed)
        // kill -9 from outside is a crash; keel kill is a stop.
        #expect(Lifecycle.afterExit(.signalled(9), requested: nil) == (.crashed, "worker killed by signal 9"))
        #expect(Lifecycle.afterExit(.signalled(9), requested: .graceful).state == .crashed)
        #expect(Lifecycle.afterExit(.signalled(9), requested: .kill).state == .stopped)
        #expect(Lifecycle.afterExit(.vanished, requested: nil).state == .crashed)
        #expect(Lifecycle.afterExit(.vanished, requested: .kill).state == .stopped)
    }

    @Test func statesWithWorkers() {
        #expect(VMState.allCases.filter(\.hasWorker) == [.starting, .running, .paused, .stopping])
    }
}
