"""Evaluation on the paper's eight benchmarks (toy copies or the real datasets).

    from valor_lib.evaluation.benchmarks import Source, load            # loaders (contract)
    from valor_lib.evaluation.metrics import mra, score                 # scoring (contract)
    from valor_lib.evaluation.runner import evaluate                    # resumable, cached predictions
    from valor_lib.evaluation.solvers import ProgramSolver              # program writer + tools
    from valor_lib.evaluation.baselines import DirectAnswerSolver       # direct-answer VLMs (plain, grounded)
    from valor_lib.evaluation.judge import AnswerJudge                  # GQA answer judge

    items = load("vsr", Source(root="data/toy/benchmarks"), limit=48, seed=0)
    run = evaluate(ProgramSolver(writer, toolbox.tools(), identity=...), items, "vsr")
    run.summary["accuracy_strict"], run.summary["accuracy_paper"]

``systems`` builds the stage's solvers from params (policy x detector); ``figures`` draws notebook 08's tables
and figures; ``toy_judge`` is the ``toy:judge`` brain.
"""
