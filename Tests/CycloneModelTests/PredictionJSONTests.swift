import CycloneModel
import Testing

@Suite struct PredictionJSONTests {
    /// A prediction is written as predict answers and stores it, and reads back as the same output.
    @Test func predictionsRoundTrip() throws {
        let classifier = PredictionJSON(classes: ["no", "yes \"quoted\""])
        let output = Output.classification(classIndex: 1, probabilities: [0.25, 0.75])
        let text = classifier.text(output)
        #expect(text == #"{"class":"yes \"quoted\"","probabilities":{"no":0.25,"yes \"quoted\"":0.75}}"#)
        #expect(classifier.output(text) == output)
        let regression = PredictionJSON(classes: nil)
        #expect(regression.text(.value(-12.5)) == #"{"value":-12.5}"#)
        #expect(regression.output(#"{"value": -12.5}"#) == .value(-12.5))
    }

    /// What is not one of the model's predictions reads as none: an unknown class, a missing probability, not JSON.
    @Test func foreignPredictionsReadAsNone() {
        let classifier = PredictionJSON(classes: ["a", "b"])
        #expect(classifier.output(#"{"class":"c","probabilities":{"a":0.5,"b":0.5}}"#) == nil)
        #expect(classifier.output(#"{"class":"a","probabilities":{"a":1}}"#) == nil)
        #expect(classifier.output("not json") == nil)
    }
}
