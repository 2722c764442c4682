import Predict

await PredictFunction.main()
