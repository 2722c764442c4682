import Evaluate

await EvaluateFunction.main()
