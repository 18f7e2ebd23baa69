import XCTest
@testable import KlineArchive

/// SlotSet's run insertion: all slots of a run or none.
final class SlotSetRunTests: XCTestCase {
    func testARunIsMarkedWholeOrNotAtAll() {
        let slots = SlotSet(anchor: 1000, step: 60, slotCount: 200)
        XCTAssertTrue(slots.insertRun(1000 + 60 * 60, count: 70))  // slots 60-129: across two word boundaries
        XCTAssertEqual(slots.distinct, 70)
        XCTAssertEqual((0..<200).filter { slots.contains(slot: $0) }, Array(60..<130))
        XCTAssertFalse(slots.insertRun(1000 + 60 * 10, count: 51))  // its last slot (60) is marked
        XCTAssertFalse(slots.insertRun(1000 + 60 * 150, count: 51))  // past the bitmap
        XCTAssertFalse(slots.insertRun(1000 - 60, count: 2))  // before the anchor
        XCTAssertFalse(slots.insertRun(1000 + 30, count: 2))  // off the slots' grid
        XCTAssertEqual(slots.distinct, 70)
        XCTAssertEqual((0..<200).filter { slots.contains(slot: $0) }, Array(60..<130))
        XCTAssertTrue(slots.insertRun(1000 + 60 * 10, count: 50))
        XCTAssertFalse(slots.insert(1000 + 60 * 59))  // marked by the run
        XCTAssertTrue(slots.insert(1000 + 60 * 130))  // the slot after the last run
        XCTAssertEqual(slots.distinct, 121)
    }
}
